"""`make backfill`: copy a Prometheus's history into the connector (not shipped to Lambda)."""
