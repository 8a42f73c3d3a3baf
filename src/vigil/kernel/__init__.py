"""Thin, typed wrappers over the kernel interfaces vigil uses (namespaces, nftables)."""
