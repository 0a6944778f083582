"""unit storage tests."""
