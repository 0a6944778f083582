"""unit storage timestream tests."""
