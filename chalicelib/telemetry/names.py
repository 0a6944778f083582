"""Names and units of the connector's CloudWatch metrics (EMF): for the app and the template."""
NAMESPACE_ENV = "METRICS_NAMESPACE"
DEFAULT_NAMESPACE = "PrometheusConnector"
DIMENSIONS = ("Stage", "Route")

# Emitted on Route /write only.
WRITE_METRICS = {"SamplesReceived": "Count", "SamplesStored": "Count",
                 "SamplesRejected": "Count", "SamplesFailed": "Count"}
# Emitted on Route /read only.
READ_METRICS = {"QueryCalls": "Count"}
# Emitted on both routes (TimestreamWriteUnits on the Timestream stages only).
COMMON_METRICS = {"Latency": "Milliseconds", "BackendCalls": "Count",
                  "BackendRetries": "Count", "BackendThrottles": "Count",
                  "BackendFailures": "Count", "TimestreamWriteUnits": "Count",
                  "LateSamples": "Count"}
