"""The names of the connector's CloudWatch metrics (Embedded Metric Format), shared by the
code that emits them and the template's dashboard and alarms."""
NAMESPACE_ENV = "METRICS_NAMESPACE"
DEFAULT_NAMESPACE = "PrometheusConnector"
DIMENSIONS = ("Stage", "Route")

WRITE_METRICS = {"SamplesReceived": "Count", "SamplesStored": "Count",
                 "SamplesRejected": "Count", "SamplesFailed": "Count",
                 "TimestreamWriteUnits": "Count", "LateSamples": "Count"}
READ_METRICS = {"QueryCalls": "Count"}
COMMON_METRICS = {"Latency": "Milliseconds", "BackendCalls": "Count", "BackendRetries": "Count",
                  "BackendThrottles": "Count", "BackendFailures": "Count"}
