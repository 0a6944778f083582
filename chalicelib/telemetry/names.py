"""Names and units of the connector's CloudWatch metrics (EMF): for the app and the template."""
NAMESPACE_ENV = "METRICS_NAMESPACE"
DEFAULT_NAMESPACE = "PrometheusConnector"
DIMENSIONS = ("Stage", "Route")

# Emitted on Route /write only (every backend; the Timestream figures are 0 on the others).
WRITE_METRICS = {"SamplesReceived": "Count", "SamplesStored": "Count",
                 "SamplesRejected": "Count", "SamplesFailed": "Count",
                 "HistogramsStored": "Count", "ExemplarsDropped": "Count",
                 "MetadataDropped": "Count",
                 "TimestreamWriteUnits": "Count", "LateSamples": "Count"}
# Emitted on Route /read only.
READ_METRICS = {"QueryCalls": "Count"}
# Emitted on both routes.
COMMON_METRICS = {"Latency": "Milliseconds", "BackendCalls": "Count",
                  "BackendRetries": "Count", "BackendThrottles": "Count",
                  "BackendFailures": "Count"}
