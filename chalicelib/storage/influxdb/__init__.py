"""Amazon Timestream for InfluxDB (and any InfluxDB) backend."""
