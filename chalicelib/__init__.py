"""Prometheus remote storage connector for Amazon Timestream (Chalice app library)."""
