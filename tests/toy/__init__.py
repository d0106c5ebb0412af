"""Toy registry entries, one file each, registered by tests/test_registry.py with one line each."""
