"""What tests and benchmarks share: real processes, clients of the remote protocols, influxd,
the Timestream emulation and the Java regex oracle. Never part of the Lambda package."""
