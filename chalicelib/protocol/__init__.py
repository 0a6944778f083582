"""The Prometheus remote read/write protocol: codec, remote write 1.0 and 2.0, remote read."""
