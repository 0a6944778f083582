import base64

import pytest

from chalicelib.auth import Credentials, credentials_from_headers
from chalicelib.errors import Unauthorized


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
