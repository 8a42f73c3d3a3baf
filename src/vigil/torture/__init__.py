"""A seeded fault campaign over the tutorial's setups (`vigil torture`)."""
