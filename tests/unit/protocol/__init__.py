"""unit protocol tests."""
