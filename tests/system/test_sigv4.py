"""`EnableSigV4Auth=true`: API Gateway's AWS_IAM authorization in front of the packaged app,
and the function storing with its own role.

The stand-in (tests/support/sigv4_gateway.py) verifies each request's SigV4 signature as AWS
does, from the known secrets, and checks the signer's identity policy (the one `make policies`
writes for the SigV4 proxy); only then does the app run. Requests here are signed with
botocore's SigV4 for `execute-api`, as a SigV4 proxy beside Prometheus signs them. The
function runs from the packaged zip with the environment the template gives it when
`EnableSigV4Auth=true` and its role's credentials where Lambda puts them (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN); its Timestream calls go through the same check
(service `timestream`) to the Timestream emulation, which records who signed each.
"""
import datetime
import re
import json
import os
import shutil
import sys
import time
import zipfile
from unittest import mock

import pytest
import yaml
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from chalicelib.protocol import codec
from chalicelib.protocol.prompb import remote_pb2
from deploy.package import package
from deploy.policies import generate
from deploy.stage import load_stage
from harness.processes import ROOT, Process, free_port, wait_for_port
from harness.remote import HEADERS, PROMETHEUS2_READ_HEADERS, post, read_request, write_request
from harness.timestream.env import DATABASE, TABLE, install_sql_functions
from harness.timestream.query_service import QueryService
from harness.timestream.server import TimestreamServer
from harness.timestream.write_rules import WriteRules
from tests.support.cloudformation import CfnLoader, Stack
from tests.support.sigv4_gateway import Gateway, Identity, SigningProxy

ACCOUNT, REGION, API_ID = "123456789012", "us-east-1", "a1b2c3d4e5"
# The identity the SigV4 proxy beside Prometheus signs with (an instance profile's temporary
# credentials), with the policy `make policies API_ID=...` writes for it.
HOST = Identity("ASIAHOSTEXAMPLE", "host/secret+EXAMPLEKEY", f"arn:aws:sts::{ACCOUNT}:"
                "assumed-role/prometheus-host/i-0a1b2c3d", session_token="host-session-token",
                policy=generate(load_stage("dev"), ACCOUNT, REGION, api_id=API_ID)[
                    "prometheus-sigv4-policy.json"])
# The function's execution role, as Lambda hands it to the function.
ROLE = Identity("ASIAROLEEXAMPLE", "role/secret+EXAMPLEKEY", f"arn:aws:sts::{ACCOUNT}:"
                "assumed-role/PrometheusTimestreamConnector-ApiHandlerRole-AbC1/fn",
                session_token="role-session-token")
# Signs correctly, but no policy lets it invoke the API.
STRANGER = Identity("AKIASTRANGEREXAMPLE", "stranger-secret", f"arn:aws:iam::{ACCOUNT}:user/x")
IDENTITIES = {i.access_key: i for i in (HOST, ROLE, STRANGER)}


def signed(url: str, body: bytes, headers: dict, identity: Identity = HOST,
           service: str = "execute-api", region: str = REGION, secret: str = None) -> dict:
    """``headers`` with botocore's SigV4 signature for ``identity`` added."""
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(Credentials(identity.access_key, secret or identity.secret_key,
                          identity.session_token), service, region).add_auth(request)
    return dict(request.headers.items())


def samples(now_ms: int) -> bytes:
    return codec.encode_message(write_request(
        ({"__name__": "signed_up", "job": "sigv4"}, [(now_ms, 1.0), (now_ms + 1000, 2.5)])))


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    out = tmp_path_factory.mktemp("sigv4") / "dev"
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    with open(package("dev", str(out))) as handle:
        return out, yaml.load(handle, Loader=CfnLoader)


def test_the_template_switches_both_methods_and_the_function_together(template):
    _, cfn = template
    assert cfn["Parameters"]["EnableSigV4Auth"]["Default"] == "false"
    for value, auth, mode in (("false", "NONE", "basic"), ("true", "AWS_IAM", "sigv4")):
        stack = Stack(cfn, {"EnableSigV4Auth": value})
        paths = stack.resources["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
        assert {route: paths[route]["post"]["x-amazon-apigateway-auth"]["type"]
                for route in ("/write", "/read")} == {"/write": auth, "/read": auth}
        env = stack.resources["APIHandler"]["Properties"]["Environment"]["Variables"]
        assert env["AUTH_MODE"] == mode


@pytest.fixture(scope="module")
def deployed(template, tmp_path_factory):
    """The packaged function behind the verifying gateway, its role's credentials in its
    environment, its Timestream calls checked and recorded on the way to the emulation."""
    out, cfn = template
    code = tmp_path_factory.mktemp("code")
    with zipfile.ZipFile(out / "deployment.zip") as archive:
        archive.extractall(code)
    for helper in ("sigv4_gateway.py", "lambda_gateway.py"):
        shutil.copy(os.path.join(ROOT, "tests", "support", helper), code)
    (code / "identities.json").write_text(json.dumps([i._asdict() for i in (HOST, STRANGER)]))
    rules = WriteRules()
    timestream = TimestreamServer(DATABASE, TABLE, rules,
                                  QueryService(DATABASE, TABLE, rules.records,
                                               install_sql_functions))
    ingest = SigningProxy(timestream.ingest_url, IDENTITIES, "timestream", REGION)
    query = SigningProxy(timestream.query_url, IDENTITIES, "timestream", REGION)
    function = Stack(cfn, {"EnableSigV4Auth": "true"}).resources["APIHandler"]["Properties"]
    env = {name: value for name, value in function["Environment"]["Variables"].items()
           if isinstance(value, str)}
    env.update({"PATH": os.environ.get("PATH", ""), "AWS_REGION": REGION,
                "AWS_LAMBDA_FUNCTION_NAME": "PrometheusTimestreamConnector-APIHandler-AbC1",
                "AWS_ACCESS_KEY_ID": ROLE.access_key, "AWS_SECRET_ACCESS_KEY": ROLE.secret_key,
                "AWS_SESSION_TOKEN": ROLE.session_token,
                "TIMESTREAM_WRITE_ENDPOINT_URL": ingest.url,
                "TIMESTREAM_QUERY_ENDPOINT_URL": query.url})
    port = free_port()
    gateway = Process([sys.executable, "-I", "-S", "sigv4_gateway.py", str(port), "dev",
                       "identities.json"], str(code / "gateway.log"), env=env, cwd=str(code))
    try:
        wait_for_port(port, gateway.proc, timeout=60)
        yield f"http://127.0.0.1:{port}/dev", timestream, ingest, query, dict(env, code=str(code))
    finally:
        gateway.stop()
        for server in (ingest, query, timestream):
            server.stop()


def test_a_signed_write_is_stored_with_the_role_and_read_back(deployed):
    url, timestream, ingest, query, env = deployed
    assert env["AUTH_MODE"] == "sigv4"
    now_ms = int(time.time() * 1000)
    body = samples(now_ms)
    status, _, answer = post(url + "/write", body, signed(url + "/write", body, HEADERS))
    assert status == 204, answer
    stored = [record for call in timestream.written for record in call["Records"]]
    assert len(stored) == 2
    # Every Timestream call was signed with the function's role, none with the signer's key.
    assert ingest.signers and set(ingest.signers) == {ROLE.access_key}

    request = read_request((now_ms - 60_000, now_ms + 60_000, [(0, "__name__", "signed_up")]))
    body = codec.encode_message(request)
    status, _, answer = post(url + "/read", body,
                             signed(url + "/read", body, PROMETHEUS2_READ_HEADERS))
    assert status == 200, answer
    response = remote_pb2.ReadResponse()
    response.ParseFromString(codec.decompress(answer, 1 << 30))
    [series] = response.results[0].timeseries
    assert {(l.name, l.value) for l in series.labels} == {("__name__", "signed_up"),
                                                         ("job", "sigv4")}
    assert [(s.timestamp, s.value) for s in series.samples] == [(now_ms, 1.0),
                                                               (now_ms + 1000, 2.5)]
    assert query.signers and set(query.signers) == {ROLE.access_key}
    assert ingest.refused == query.refused == []


@pytest.mark.parametrize("case", ["unsigned", "wrong secret", "stranger", "basic auth"])
def test_a_request_the_gateway_refuses_never_reaches_the_function(deployed, case):
    url, timestream, ingest, _, _ = deployed
    body = samples(int(time.time() * 1000))
    headers = {"unsigned": dict(HEADERS),
               "wrong secret": signed(url + "/write", body, HEADERS, secret="guessed"),
               "stranger": signed(url + "/write", body, HEADERS, STRANGER),
               "basic auth": {**HEADERS, "Authorization": "Basic QUtJRDpzZWNyZXQ="}}[case]
    calls = len(ingest.signers)
    status, answered, answer = post(url + "/write", body, headers)
    assert status == 403, answer
    assert answered["Content-Type"] == "application/json" and "x-amzn-ErrorType" in answered
    assert len(ingest.signers) == calls  # the function called nothing


def test_without_aws_iam_on_the_api_the_function_refuses_what_reaches_it(deployed, tmp_path):
    """The same function behind an API whose methods are not AWS_IAM (the stack changed by
    hand): no IAM caller in the request context, so nothing is written or read with the role;
    a write is answered 500 (Prometheus keeps it), a read 403."""
    _, _, ingest, query, env = deployed
    port = free_port()
    open_api = Process([sys.executable, "-I", "-S", "lambda_gateway.py", str(port), "dev"],
                       str(tmp_path / "open.log"), cwd=env["code"],
                       env={k: v for k, v in env.items() if k != "code"})
    with open_api:
        wait_for_port(port, open_api.proc, timeout=60)
        calls = len(ingest.signers), len(query.signers)
        body = samples(int(time.time() * 1000))
        for route, status in (("/write", 500), ("/read", 403)):
            answered, _, answer = post(f"http://127.0.0.1:{port}{route}", body, HEADERS)
            assert answered == status and b"AWS_IAM authorization" in answer, answer
        assert (len(ingest.signers), len(query.signers)) == calls


# The refusals, each from the stand-in itself in front of a function that counts its calls.
@pytest.fixture
def gateway():
    calls = []
    stand_in = Gateway(lambda event: calls.append(event) or {"statusCode": 204, "body": ""},
                       IDENTITIES, "dev", REGION, API_ID).start()
    yield stand_in, calls
    stand_in.stop()


def test_the_function_sees_who_signed(gateway):
    stand_in, calls = gateway
    body = samples(int(time.time() * 1000))
    status, _, _ = post(stand_in.url + "/write", body,
                        signed(stand_in.url + "/write", body, HEADERS))
    assert status == 204
    [event] = calls
    assert event["requestContext"]["identity"]["userArn"] == HOST.user_arn
    assert event["requestContext"]["identity"]["accessKey"] == HOST.access_key
    assert (event["path"], event["requestContext"]["stage"]) == ("/write", "dev")


def _past(minutes: int):
    return mock.patch("botocore.auth.get_current_datetime", return_value=(
        datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=minutes)
    ).replace(tzinfo=None))


@pytest.mark.parametrize("change,error_type,message", [
    ("unsigned", "MissingAuthenticationTokenException", "Missing Authentication Token"),
    ("wrong secret", "InvalidSignatureException", "signature we calculated does not match"),
    ("body changed", "InvalidSignatureException", "signature we calculated does not match"),
    ("signed for /read", "InvalidSignatureException", "signature we calculated does not match"),
    ("header changed", "InvalidSignatureException", "signature we calculated does not match"),
    ("service aps", "InvalidSignatureException", "scoped to correct service: 'execute-api'"),
    ("other region", "InvalidSignatureException", "scoped to a valid region"),
    ("ten minutes old", "InvalidSignatureException", "Signature expired"),
    ("no session token", "UnrecognizedClientException", "security token included"),
    ("unknown key", "UnrecognizedClientException", "security token included"),
    ("stranger", "AccessDeniedException", "not authorized to perform: execute-api:Invoke"),
    ("other stage", "MissingAuthenticationTokenException", "Missing Authentication Token"),
])
def test_the_stand_in_refuses_what_api_gateway_refuses(gateway, change, error_type, message):
    stand_in, calls = gateway
    url = stand_in.url + "/write"
    body = samples(int(time.time() * 1000))
    sent_body, sent_url = body, url
    if change == "unsigned":
        headers = dict(HEADERS)
    elif change == "wrong secret":
        headers = signed(url, body, HEADERS, secret="guessed")
    elif change == "body changed":
        headers, sent_body = signed(url, body, HEADERS), body + b"\0"
    elif change == "signed for /read":
        headers = signed(stand_in.url + "/read", body, HEADERS)
    elif change == "header changed":
        headers = {**signed(url, body, HEADERS), "Content-Encoding": "gzip"}
    elif change == "service aps":  # what Prometheus's own sigv4 block would sign for
        headers = signed(url, body, HEADERS, service="aps")
    elif change == "other region":
        headers = signed(url, body, HEADERS, region="eu-west-1")
    elif change == "ten minutes old":
        with _past(10):
            headers = signed(url, body, HEADERS)
    elif change == "no session token":
        headers = signed(url, body, HEADERS, HOST._replace(session_token=None))
    elif change == "unknown key":
        headers = signed(url, body, HEADERS, Identity("AKIAUNKNOWN", "s", HOST.user_arn))
    elif change == "stranger":
        headers = signed(url, body, HEADERS, STRANGER)
    else:
        sent_url = url.replace("/dev/", "/prod/")
        headers = signed(sent_url, body, HEADERS)
    status, answered, answer = post(sent_url, sent_body, headers)
    assert (status, answered["x-amzn-ErrorType"]) == (403, error_type), answer
    assert message in json.loads(answer)["message"]
    assert calls == []


def test_a_signature_a_few_minutes_old_still_passes(gateway):
    """AWS allows 5 minutes of clock skew."""
    stand_in, calls = gateway
    url, body = stand_in.url + "/read", samples(int(time.time() * 1000))
    with _past(3):
        headers = signed(url, body, HEADERS)
    assert post(url, body, headers)[0] == 204 and len(calls) == 1


def readme_section(heading: str) -> str:
    with open(os.path.join(ROOT, "README.md")) as handle:
        text = handle.read()
    section = text[text.index(heading):]
    return section[:section.index("\n### ", 1)]


def test_the_readme_sigv4_steps_are_what_the_stack_takes(template, tmp_path):
    """The proxy signs for execute-api in a region and forwards to the API's host; the
    prometheus.yml (valid for promtool) sends write and read to the proxy with the stage in
    the path and no basic_auth; the default and its reason are stated; the policy is the one
    `make policies` writes."""
    import subprocess
    _, cfn = template
    section = readme_section("### SigV4 instead of IAM keys (`EnableSigV4Auth`)")
    [command] = re.findall(r"```sh\n(.*?)```", section, re.S)
    command = command.replace("\\\n", " ")
    assert "aws-sigv4-proxy --name execute-api --region us-east-1" in command
    host = re.search(r"--host (\S+)", command).group(1)
    assert re.fullmatch(r"[a-z0-9]{10}\.execute-api\.us-east-1\.amazonaws\.com", host)
    listen = re.search(r"--port (\S+)", command).group(1)
    [config] = re.findall(r"```yaml\n(.*?)```", section, re.S)
    stage = cfn["Parameters"]["APIGatewayStageName"]["Default"]
    assert f"url: http://{listen}/{stage}/write" in config
    assert f"url: http://{listen}/{stage}/read" in config
    assert "basic_auth" not in config and "sigv4:" not in config
    path = tmp_path / "prometheus.yml"
    path.write_text(config)
    checked = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True,
                             text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    flat = " ".join(section.split())
    for claim in ("signs remote write only, and only for the service `aps`",
                  "`prometheus-sigv4-policy.json`", "API_ID=", "The default is `false`",
                  "keep working after an update"):
        assert claim in flat, claim
    assert cfn["Parameters"]["EnableSigV4Auth"]["Default"] == "false"


# The parameters of the Go connector's current template (serverless/template.yml, v1.3.2).
GO_PARAMETERS = ["APIGatewayStageName", "MemorySize", "ApiGatewayTimeoutInMillis",
                 "EnableSigV4Auth", "LambdaTimeoutInSeconds", "ReadThrottlingBurstLimit",
                 "WriteThrottlingBurstLimit", "DefaultDatabase", "DefaultTable",
                 "ExecutionPolicyName", "LogLevel"]


def test_the_readme_maps_every_go_template_parameter_to_ours(template):
    _, cfn = template
    section = readme_section("### Upgrade (the URLs stay)")
    table = section[section.index("| the Go connector's template |"):]
    rows = [line for line in table.splitlines() if line.startswith("|")][2:]
    mapped = {}
    for row in rows:
        theirs, ours = row.strip("|").split(" | ")
        found = re.findall(r"`([A-Z][A-Za-z0-9]+)`", ours)  # the first one named is ours
        for name in re.findall(r"`([A-Z][A-Za-z0-9]+)`", theirs):
            mapped[name] = found[:1] or "same"
    assert sorted(mapped) == sorted(GO_PARAMETERS)
    for name, ours in mapped.items():
        for target in ([name] if ours == "same" else ours):
            assert target in cfn["Parameters"], (name, target)
    assert mapped["LambdaTimeoutInSeconds"] == mapped["ApiGatewayTimeoutInMillis"] == \
        ["TimeoutInMillis"]
    assert "`Architecture`" in table
