"""The operator's view of a deployed stack: a CloudWatch dashboard and alarms.

They read three sources:

- the connector's own metrics: the Embedded Metric Format document the app prints per request
  on Lambda, in the namespace of ``MetricsNamespace`` (the function's ``METRICS_NAMESPACE``),
  with the one dimension set Stage (the API stage, ``APIGatewayStageName``) and Route; the
  names are those of ``chalicelib/telemetry/names.py``;
- the function's ``AWS/Lambda`` metrics (FunctionName);
- the API's ``AWS/ApiGateway`` metrics (ApiName and Stage). A REST API imported from an OpenAPI
  body without a ``Name`` is named after the body's ``info.title``, which ``chalice package``
  sets to the app's name.

Alarms notify ``AlarmTopicArn`` (an existing SNS topic) and/or a topic the stack creates with an
email subscription to ``AlarmEmail``; with neither, as by default, they exist without actions.
"""
import copy
import json
from typing import Dict, List

from chalicelib.telemetry import names
from deploy.stage import Stage

WRITE, READ = "/write", "/read"
PERIOD = 300  # seconds: the dashboard's and the alarms' period, except NoSamplesStored's
SUSTAINED = 3  # periods in a row for the alarms on what Prometheus retries
DURATION_ALARM_PERCENT = 80
SERVER_ERROR_RATE = 0.05
HAS_TOPIC, HAS_EMAIL, SENDS_ALARMS = "HasAlarmTopicArn", "HasAlarmEmail", "SendsAlarms"
TOPIC, DASHBOARD = "AlarmTopic", "Dashboard"
NO_VALUE = {"Ref": "AWS::NoValue"}
# CloudWatch namespaces: these characters, not starting with "AWS/" (space left out).
NAMESPACE_PATTERN = r"^(?!AWS/)[A-Za-z0-9._/#:-]{1,255}$"
TOPIC_ARN_PATTERN = r"^(arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256})?$"
EMAIL_PATTERN = r"^([^@\s]+@[^@\s]+\.[^@\s]+)?$"
# Numbers the dashboard's JSON takes from the template: json.dumps quotes the placeholder,
# Fn::Sub puts the number in its place.
TIMEOUT_MS, DURATION_ALARM_MS = "${TimeoutInMillis}", "${DurationAlarmMillis}"


def parameters() -> dict:
    """The metrics' namespace, the alarms' optional destinations and the no-data window."""
    return {
        "MetricsNamespace": {
            "Type": "String", "Default": names.DEFAULT_NAMESPACE,
            "AllowedPattern": NAMESPACE_PATTERN,
            "Description": "CloudWatch namespace of the connector's own metrics (its "
                           f"{names.NAMESPACE_ENV}); the dashboard and alarms read it."},
        "AlarmTopicArn": {
            "Type": "String", "Default": "", "AllowedPattern": TOPIC_ARN_PATTERN,
            "Description": "An existing SNS topic the alarms notify; empty: none."},
        "AlarmEmail": {
            "Type": "String", "Default": "", "AllowedPattern": EMAIL_PATTERN,
            "Description": "An email address: the stack creates an SNS topic the alarms "
                           "notify, subscribed to it (confirm the email AWS sends); empty: none."},
        "NoDataMinutes": {
            "Type": "Number", "Default": 15, "MinValue": 1, "MaxValue": 1440,
            "Description": "The NoSamplesStored alarm fires after this many minutes in a row "
                           "without a stored sample."},
    }


def _given(name: str) -> dict:
    return {"Fn::Not": [{"Fn::Equals": [{"Ref": name}, ""]}]}


def conditions() -> dict:
    """Which alarm destinations are given."""
    return {HAS_TOPIC: _given("AlarmTopicArn"), HAS_EMAIL: _given("AlarmEmail"),
            SENDS_ALARMS: {"Fn::Or": [{"Condition": HAS_TOPIC}, {"Condition": HAS_EMAIL}]}}


def route_metrics(route: str) -> Dict[str, str]:
    """The connector's metrics on one route, name -> unit."""
    own = names.WRITE_METRICS if route == WRITE else names.READ_METRICS
    return {**own, **names.COMMON_METRICS}


def _checked(name: str, route: str) -> str:
    if name not in route_metrics(route):
        raise ValueError(f"the connector emits no metric {name!r} on {route}")
    return name


def dimensions(stage: Stage, route: str) -> List[dict]:
    """The connector's one dimension set, as an alarm names it: Stage is the API stage
    serving the request (the app reads it from the request), APIGatewayStageName."""
    return [{"Name": "Stage", "Value": {"Ref": "APIGatewayStageName"}},
            {"Name": "Route", "Value": route}]


def widget_metric(stage: Stage, name: str, route: str, **options) -> list:
    """One line of a dashboard graph: a connector metric on a route."""
    line = ["${MetricsNamespace}", _checked(name, route), "Stage", "${APIGatewayStageName}",
            "Route", route]
    return line + [options] if options else line


def _lambda(name: str, **options) -> list:
    return ["AWS/Lambda", name, "FunctionName", "${APIHandler}", options]


def _api(stage: Stage, name: str, **options) -> list:
    return ["AWS/ApiGateway", name, "ApiName", stage.app_name, "Stage",
            "${APIGatewayStageName}", options]


def _graph(title: str, metrics: list, stat: str = "Sum", **extra) -> dict:
    return {"type": "metric", "width": 12, "height": 6, "properties": {
        "title": title, "view": "timeSeries", "region": "${AWS::Region}", "period": PERIOD,
        "stat": stat, "metrics": metrics, **extra}}


def connector_widgets(stage: Stage) -> List[dict]:
    """Graphs of the connector's own metrics (Timestream write units on Timestream stages)."""
    samples = [widget_metric(stage, name, WRITE) for name in names.WRITE_METRICS]
    backend = [widget_metric(stage, name, route, label=f"{name} {route}")
               for route in (WRITE, READ)
               for name in ("BackendThrottles", "BackendRetries", "BackendFailures")]
    calls = [widget_metric(stage, "BackendCalls", route, label=f"BackendCalls {route}")
             for route in (WRITE, READ)] + [widget_metric(stage, "QueryCalls", READ)]
    latency = [widget_metric(stage, "Latency", route, stat=stat, label=f"{route} {stat}")
               for route in (WRITE, READ) for stat in ("p50", "p99")]
    widgets = [_graph("Samples (/write)", samples),
               _graph("Backend throttles, retries, failures", backend),
               _graph("Backend calls and query calls", calls),
               _graph("Latency by route (ms)", latency, stat="p99")]
    if stage.backend == "timestream":
        widgets.append(_graph("Timestream write units and late samples (/write)", [
            widget_metric(stage, "TimestreamWriteUnits", WRITE),
            widget_metric(stage, "LateSamples", WRITE)]))
    return widgets


def platform_widgets(stage: Stage) -> List[dict]:
    """Graphs of the function (AWS/Lambda) and the API (AWS/ApiGateway)."""
    limits = {"horizontal": [{"label": "Lambda timeout", "value": TIMEOUT_MS},
                             {"label": "FunctionDuration alarm", "value": DURATION_ALARM_MS}]}
    return [
        _graph("Lambda errors and throttles", [_lambda("Errors"), _lambda("Throttles")]),
        _graph("Lambda duration vs the timeout (ms)", [
            _lambda("Duration", stat="p99", label="p99"),
            _lambda("Duration", stat="Maximum", label="max")], annotations=limits),
        _graph("Lambda concurrent executions",
               [_lambda("ConcurrentExecutions", stat="Maximum")]),
        _graph("API Gateway requests and errors", [
            _api(stage, "Count", label="requests"), _api(stage, "4XXError"),
            _api(stage, "5XXError")]),
        _graph("API Gateway latency (ms)", [
            _api(stage, "Latency", stat="p50", label="p50"),
            _api(stage, "Latency", stat="p99", label="p99")]),
    ]


def dashboard_body(stage: Stage) -> dict:
    """The dashboard's JSON, resolved by Fn::Sub: region, function, namespace, API stage,
    timeout and the alarms' ARNs."""
    status = {"type": "alarm", "width": 24, "height": 3, "properties": {
        "title": "Alarms", "alarms": ["${%s.Arn}" % name for name in alarms(stage)]}}
    widgets = [status] + connector_widgets(stage) + platform_widgets(stage)
    text = json.dumps({"widgets": widgets}, separators=(",", ":"))
    for number in (TIMEOUT_MS, DURATION_ALARM_MS):
        text = text.replace(json.dumps(number), number)
    return {"Fn::Sub": [text, {"DurationAlarmMillis": _duration_alarm_millis()}]}


def dashboard(stage: Stage) -> dict:
    """The dashboard, named after the stack and region (dashboards are global)."""
    return {"Type": "AWS::CloudWatch::Dashboard", "Properties": {
        "DashboardName": {"Fn::Sub": "${AWS::StackName}-${AWS::Region}"},
        "DashboardBody": dashboard_body(stage)}}


def _actions() -> dict:
    destinations = [{"Fn::If": [HAS_TOPIC, {"Ref": "AlarmTopicArn"}, NO_VALUE]},
                    {"Fn::If": [HAS_EMAIL, {"Ref": TOPIC}, NO_VALUE]}]
    return {"Fn::If": [SENDS_ALARMS, destinations, NO_VALUE]}


def _alarm(name: str, description: str, rule: dict, periods: int = 1) -> dict:
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "AlarmName": {"Fn::Sub": "${AWS::StackName}-" + name},
        "AlarmDescription": description,
        "AlarmActions": _actions(), "OKActions": _actions(),
        "EvaluationPeriods": periods, "DatapointsToAlarm": periods,
        "ComparisonOperator": "GreaterThanThreshold", "Threshold": 0,
        "TreatMissingData": "notBreaching", **rule}}


def _connector(stage: Stage, name: str, route: str, statistic: str = "Sum",
               period: int = PERIOD) -> dict:
    return {"Namespace": {"Ref": "MetricsNamespace"}, "MetricName": _checked(name, route),
            "Dimensions": dimensions(stage, route), "Statistic": statistic, "Period": period}


def _function(name: str) -> dict:
    return {"Namespace": "AWS/Lambda", "MetricName": name, "Period": PERIOD,
            "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": "APIHandler"}}]}


def _throttles_on_both_routes(stage: Stage) -> dict:
    queries = [{"Id": f"m{i}", "ReturnData": False, "MetricStat": {
        "Metric": {"Namespace": {"Ref": "MetricsNamespace"},
                   "MetricName": _checked("BackendThrottles", route),
                   "Dimensions": dimensions(stage, route)},
        "Period": PERIOD, "Stat": "Sum"}} for i, route in enumerate((WRITE, READ))]
    total = {"Id": "throttles", "Label": "BackendThrottles on /write and /read",
             "Expression": "FILL(m0, 0) + FILL(m1, 0)", "ReturnData": True}
    return {"Metrics": queries + [total]}


def _duration_alarm_millis() -> dict:
    return {"Fn::FindInMap": ["Timeouts", {"Ref": "TimeoutInMillis"}, "DurationAlarmMillis"]}


def alarms(stage: Stage) -> Dict[str, dict]:
    """Alarms that fire when samples stop arriving or are being lost, by logical id."""
    minutes = {"Ref": "NoDataMinutes"}
    return {
        "NoSamplesStoredAlarm": _alarm(
            "NoSamplesStored", "No sample stored for NoDataMinutes minutes (no data counts).",
            {**_connector(stage, "SamplesStored", WRITE, period=60),
             "EvaluationPeriods": minutes, "DatapointsToAlarm": minutes,
             "ComparisonOperator": "LessThanThreshold", "Threshold": 1,
             "TreatMissingData": "breaching"}),
        "WritesFailingAlarm": _alarm(
            "WritesFailing", "Writes answered 5xx (SamplesFailed) in each of 3 five-minute "
            "periods: Prometheus keeps retrying them and its queue grows.",
            _connector(stage, "SamplesFailed", WRITE), SUSTAINED),
        "SamplesRejectedAlarm": _alarm(
            "SamplesRejected", "Samples answered 400 (SamplesRejected): Prometheus drops them.",
            _connector(stage, "SamplesRejected", WRITE)),
        "BackendThrottlesAlarm": _alarm(
            "BackendThrottles", "The backend throttled calls in each of 3 five-minute periods.",
            _throttles_on_both_routes(stage), SUSTAINED),
        "ApiServerErrorsAlarm": _alarm(
            "ApiServerErrors", f"Over {SERVER_ERROR_RATE:.0%} of the API stage's requests "
            "answered 5xx in each of 3 five-minute periods.",
            {"Namespace": "AWS/ApiGateway", "MetricName": "5XXError", "Statistic": "Average",
             "Period": PERIOD, "Threshold": SERVER_ERROR_RATE, "Dimensions": [
                 {"Name": "ApiName", "Value": stage.app_name},
                 {"Name": "Stage", "Value": {"Ref": "APIGatewayStageName"}}]}, SUSTAINED),
        "FunctionErrorsAlarm": _alarm(
            "FunctionErrors", "The function failed (Lambda Errors: crashes and timeouts).",
            {**_function("Errors"), "Statistic": "Sum"}),
        "FunctionDurationAlarm": _alarm(
            "FunctionDuration", f"Duration p99 over {DURATION_ALARM_PERCENT}% of the shorter of "
            "the Lambda timeout and API Gateway's 29 s, in each of 3 five-minute periods.",
            {**_function("Duration"), "ExtendedStatistic": "p99",
             "Threshold": _duration_alarm_millis()}, SUSTAINED),
    }


def alarm_topic() -> dict:
    """The topic the stack creates for AlarmEmail, with its email subscription."""
    return {"Type": "AWS::SNS::Topic", "Condition": HAS_EMAIL, "Properties": {
        "DisplayName": "Prometheus connector alarms",
        "Subscription": [{"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}]}}


def outputs() -> dict:
    url = "https://console.aws.amazon.com/cloudwatch/home?region=${AWS::Region}" \
          "#dashboards/dashboard/${%s}" % DASHBOARD
    return {"DashboardURL": {"Description": "The stack's CloudWatch dashboard",
                             "Value": {"Fn::Sub": url}},
            TOPIC: {"Description": "The SNS topic the stack created for AlarmEmail",
                    "Condition": HAS_EMAIL, "Value": {"Ref": TOPIC}}}


def add_duration_thresholds(timeouts: Dict[str, dict]) -> None:
    """Each TimeoutInMillis's FunctionDuration threshold: a share of the time a request
    really has, the shorter of the Lambda timeout and the integration timeout."""
    for derived in timeouts.values():
        derived["DurationAlarmMillis"] = \
            derived["IntegrationMillis"] * DURATION_ALARM_PERCENT // 100


def adapt_merge_template(stage: Stage, template: dict) -> dict:
    """A stage's merge template with the namespace, dashboard, alarms and their topic added."""
    template = copy.deepcopy(template)
    template["Parameters"].update(parameters())
    template.setdefault("Conditions", {}).update(conditions())
    add_duration_thresholds(template["Mappings"]["Timeouts"])
    resources = template["Resources"]
    variables = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    variables[names.NAMESPACE_ENV] = {"Ref": "MetricsNamespace"}
    resources.update({DASHBOARD: dashboard(stage), TOPIC: alarm_topic(), **alarms(stage)})
    template["Outputs"].update(outputs())
    return template


def deployment_statements(account: str, region: str, stack_name: str) -> List[dict]:
    """What `sam deploy` needs to create, change and delete the dashboard, the alarms and the
    topic (the actions of their CloudFormation handlers), on this stack's names only."""
    def arn(service: str, resource: str, in_region: str = region) -> str:
        return f"arn:aws:{service}:{in_region}:{account}:{resource}"
    tags = ["TagResource", "UntagResource", "ListTagsForResource"]
    return [
        {"Sid": "Dashboard", "Effect": "Allow",
         "Action": [f"cloudwatch:{a}" for a in
                    ["PutDashboard", "GetDashboard", "DeleteDashboards"] + tags],
         "Resource": arn("cloudwatch", f"dashboard/{stack_name}-{region}", "")},
        {"Sid": "Alarms", "Effect": "Allow",
         "Action": [f"cloudwatch:{a}" for a in
                    ["PutMetricAlarm", "DescribeAlarms", "DeleteAlarms"] + tags],
         "Resource": arn("cloudwatch", f"alarm:{stack_name}-*")},
        {"Sid": "AlarmTopic", "Effect": "Allow",
         "Action": [f"sns:{a}" for a in
                    ["CreateTopic", "DeleteTopic", "GetTopicAttributes", "SetTopicAttributes",
                     "Subscribe", "ListSubscriptionsByTopic", "GetDataProtectionPolicy",
                     "PutDataProtectionPolicy"] + tags],
         "Resource": arn("sns", f"{stack_name}-*")},
        # A changed AlarmEmail unsubscribes the old address; the action takes no resource ARN.
        {"Sid": "ChangeTheAlarmEmail", "Effect": "Allow", "Action": ["sns:Unsubscribe"],
         "Resource": "*"},
    ]
