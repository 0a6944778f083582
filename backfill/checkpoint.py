"""The checkpoint of a run: which time slices of one (FROM, TO, MATCH, START, END) were
sent completely, in a small JSON file, so an interrupted run resumes after them.

A slice is recorded only once every one of its requests was answered; a slice under way
when the run stopped is sent again whole, which stores nothing twice on any backend (each
stores one value per series and timestamp, and an identical sample written again is no
change)."""
import hashlib
import json
import os
import tempfile
from typing import Dict, List, Tuple

Slice = Tuple[int, int]


def key(source: str, target: str, match: str, start_ms: int, end_ms: int) -> str:
    text = json.dumps([source.rstrip("/"), target.rstrip("/"), match, start_ms, end_ms])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Checkpoint:
    """Completed slices and the totals sent so far, saved atomically after each slice."""

    def __init__(self, directory: str, run_key: str, describe: Dict[str, object]) -> None:
        self.path = os.path.join(directory, f"backfill-{run_key}.json")
        self.describe = describe
        self.done: List[Slice] = []
        self.totals: Dict[str, int] = {}
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as handle:
                saved = json.load(handle)
            self.done = [tuple(item) for item in saved.get("done", [])]
            self.totals = dict(saved.get("totals", {}))

    def is_done(self, piece: Slice) -> bool:
        return tuple(piece) in self.done

    def complete(self, piece: Slice, totals: Dict[str, int]) -> None:
        self.done.append(tuple(piece))
        self.totals = dict(totals)
        self._save()

    def _save(self) -> None:
        directory = os.path.dirname(self.path) or "."
        os.makedirs(directory, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".backfill-")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump({"run": self.describe, "done": [list(p) for p in self.done],
                       "totals": self.totals}, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)
