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
