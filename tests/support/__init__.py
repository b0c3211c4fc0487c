"""Helpers shared by the test packages (fixtures live in conftest.py)."""
