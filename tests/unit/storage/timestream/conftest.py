"""Fixtures of the Timestream tests: the emulation, at a fixed "now", retrying without sleeps."""
import pytest

from chalicelib import retry
from harness.timestream.env import NOW_MS, timestream_env


@pytest.fixture(autouse=True)
def no_backoff_sleep(monkeypatch):
    """Retries back off without sleeping."""
    monkeypatch.setattr(retry, "sleep", lambda seconds: None)


@pytest.fixture
def env():
    """A Timestream emulation whose clock reads ``NOW_MS``."""
    with timestream_env(clock=lambda: NOW_MS / 1000) as env:
        yield env
