"""An emulation of Amazon Timestream for LiveAnalytics that behaves as the service does (each
rule cites its documentation): moto for the write wire plus the service's write rules, and a
query service that runs the connector's SQL on DuckDB with Java regexes."""
