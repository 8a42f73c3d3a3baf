pytest_plugins = ["vigil.testing.fixtures"]
