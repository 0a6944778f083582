"""unit storage influxdb tests."""
