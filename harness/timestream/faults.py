"""Inject AWS errors into chosen calls of a real boto3 client (botocore event hooks)."""
import json
import threading
from types import SimpleNamespace
from typing import List, Optional


class FaultInjector:
    """Answers the first calls of an operation with the given errors, then lets calls through.

    ``errors`` items are (HTTP status, error code) or None (let that call through)."""

    def __init__(self, client, operation: str, errors: List[Optional[tuple]],
                 extra: Optional[dict] = None) -> None:
        self.errors = list(errors)
        self.extra = extra or {}
        self.calls = 0
        self._lock = threading.Lock()
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-call.{service}.{operation}", self._before_call)

    def _before_call(self, **kwargs):
        with self._lock:
            self.calls += 1
            error = self.errors.pop(0) if self.errors else None
        if error is None:
            return None
        status, code = error
        parsed = {"Error": {"Code": code, "Message": f"injected {code}"},
                  "ResponseMetadata": {"HTTPStatusCode": status}, **self.extra}
        # as botocore reads it from the JSON body: fresh strings, not the caller's constants
        return SimpleNamespace(status_code=status, headers={}), json.loads(json.dumps(parsed))
