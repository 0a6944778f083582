import base64

import pytest

from chalicelib.auth import Credentials, check_caller, credentials_from_headers
from chalicelib.config import Settings
from chalicelib.errors import CredentialsFailed, Forbidden, Unauthorized


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth_carries_the_access_key_pair():
    creds = credentials_from_headers({"Authorization": basic("AKID", "se:cret")})
    assert creds == Credentials("AKID", "se:cret", None)


def test_session_token_comes_from_its_header():
    creds = credentials_from_headers({"authorization": basic("AKID", "s"),
                                      "X-AWS-Session-Token": "tok"})
    assert creds.session_token == "tok"


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer x"}, {"Authorization": "Basic !!!"},
    {"Authorization": basic("", "x")}, {"Authorization": basic("AKID", "")},
    {"Authorization": "Basic " + base64.b64encode(b"nocolon").decode()},
])
def test_missing_or_malformed_credentials_are_401(headers):
    with pytest.raises(Unauthorized) as raised:
        credentials_from_headers(headers)
    assert raised.value.status == 401
    assert raised.value.headers["WWW-Authenticate"].startswith("Basic")


def test_secrets_stay_out_of_repr_and_cache_key():
    creds = Credentials("AKID", "topsecret", "token")
    assert "topsecret" not in repr(creds) and "token" not in repr(creds)
    assert "topsecret" not in creds.cache_key()
    assert creds.cache_key() != Credentials("AKID", "other", "token").cache_key()


@pytest.mark.parametrize("user,password,token,message", [
    ("AKIDEXAMPLE", "secret\r\n", None, "line breaks"),
    ("AKIDEXAMPLE", "sé", None, "printable ASCII"),
    ("AKID EXAMPLE", "secret", None, "access key id"),
    ("AKIDEXAMPLE", "secret", "tok\x00en", "X-AWS-Session-Token"),
])
def test_credentials_that_cannot_be_signed_are_refused_without_calling_aws(user, password,
                                                                           token, message):
    headers = {"Authorization": basic(user, password)}
    if token:
        headers["X-AWS-Session-Token"] = token
    with pytest.raises(Unauthorized, match=message):
        credentials_from_headers(headers)


def test_non_ascii_bytes_in_the_header_are_refused_not_a_crash():
    with pytest.raises(Unauthorized, match="not base64"):
        credentials_from_headers({"Authorization": "Basic QUtJRDpz\u00ffZWNyZXQ="})


@pytest.mark.parametrize("authorization", [
    "Apikey " + base64.b64encode(b"AKID:secret").decode(),  # sorts before Basic
    "Bearer " + base64.b64encode(b"AKID:secret").decode(),  # sorts after Basic
    "Basic", "Basic    ",
])
def test_other_schemes_and_an_empty_basic_header_are_missing_credentials(authorization):
    with pytest.raises(Unauthorized, match="missing credentials: configure basic_auth"):
        credentials_from_headers({"Authorization": authorization})


def test_the_basic_scheme_name_is_case_insensitive():
    header = basic("AKID", "secret").replace("Basic", "bASIC")
    assert credentials_from_headers({"Authorization": header}) == Credentials("AKID", "secret")


@pytest.mark.parametrize("encoded", ["!!!", base64.b64encode(b"AKID:secret").decode() + "!"])
def test_characters_outside_base64_are_refused_not_skipped(encoded):
    with pytest.raises(Unauthorized, match="not base64 of username:password"):
        credentials_from_headers({"Authorization": "Basic " + encoded})


@pytest.mark.parametrize("user,password", [("", "secret"), ("AKID", ""), ("AKIDsecret", None)])
def test_an_empty_username_or_password_is_named_as_missing(user, password):
    pair = user if password is None else f"{user}:{password}"
    header = "Basic " + base64.b64encode(pair.encode()).decode()
    with pytest.raises(Unauthorized, match="must carry an access key id and a secret access key"):
        credentials_from_headers({"Authorization": header})


def test_a_renewed_session_token_is_other_credentials_to_cache_clients_by():
    first, renewed = Credentials("AKID", "s", "token-1"), Credentials("AKID", "s", "token-2")
    assert first.cache_key() != renewed.cache_key()
    assert Credentials("AKID", "s").cache_key() != first.cache_key()


SIGNED = ("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/execute-api/aws4_request, "
          "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64)


def test_a_sigv4_signed_request_in_basic_mode_says_which_switch_is_wrong():
    """A SigV4 proxy in front of a stack deployed without EnableSigV4Auth: the signature is
    no basic auth, and the message names the parameter rather than "missing credentials"."""
    with pytest.raises(Unauthorized, match="signed with SigV4.*EnableSigV4Auth=true") as raised:
        credentials_from_headers({"Authorization": SIGNED})
    assert "AKIDEXAMPLE" not in str(raised.value)  # nothing of the header is echoed


IAM_CALLER = {"identity": {"userArn": "arn:aws:iam::123456789012:user/prometheus",
                           "caller": "AIDAEXAMPLE", "accessKey": "AKIDEXAMPLE",
                           "accountId": "123456789012", "sourceIp": "192.0.2.1"}}


@pytest.mark.parametrize("mode", ["basic", "role"])
@pytest.mark.parametrize("context", [None, {}, {"identity": {"sourceIp": "192.0.2.1"}}])
def test_only_the_sigv4_mode_asks_api_gateway_for_an_iam_caller(mode, context):
    for writing in (True, False):
        check_caller(mode, context, writing)


def test_in_sigv4_mode_a_caller_api_gateway_authenticated_with_iam_passes():
    for writing in (True, False):
        check_caller("sigv4", IAM_CALLER, writing)


@pytest.mark.parametrize("context", [
    None, {}, {"identity": None}, {"identity": {"sourceIp": "192.0.2.1", "userArn": None}},
    {"identity": {"sourceIp": "192.0.2.1", "userArn": ""}}])
def test_in_sigv4_mode_a_request_no_iam_check_let_through_is_refused(context):
    """No IAM caller in the request context: the API's methods are not AWS_IAM. A read is
    403; a write 500, so that Prometheus keeps its samples until the stack is fixed."""
    with pytest.raises(CredentialsFailed, match="AWS_IAM authorization") as write:
        check_caller("sigv4", context, writing=True)
    with pytest.raises(Forbidden, match="EnableSigV4Auth=true") as read:
        check_caller("sigv4", context, writing=False)
    assert (write.value.status, read.value.status) == (500, 403)


def test_the_sigv4_mode_is_a_setting():
    assert Settings.from_env({"STORAGE_BACKEND": "timestream", "AUTH_MODE": "sigv4"}).auth_mode \
        == "sigv4"
    assert Settings.from_env({"STORAGE_BACKEND": "influxdb", "AUTH_MODE": "SigV4"}).auth_mode \
        == "sigv4"
    with pytest.raises(ValueError, match="AUTH_MODE"):
        Settings.from_env({"AUTH_MODE": "iam"})
