"""Prometheus's label rules, shared by remote write 1.0 and 2.0, and what a write
request translates to.

Label rules follow Prometheus 3 (UTF-8 names): every label name and the metric
name (``__name__``, which must be present) are non-empty UTF-8, no name appears
twice. Labels with empty values are dropped (an empty value means "absent"
in Prometheus). Values may be any UTF-8.
"""
from typing import List, NamedTuple

from chalicelib.errors import BadRequest
from chalicelib.model import Labels, Series, describe


def validate_labels(labels: Labels) -> Labels:
    """Return ``labels`` sorted with empty values dropped; BadRequest if invalid."""
    seen = set()
    for name, _ in labels:
        if not name:
            raise BadRequest(f"empty label name in series {describe(labels)}")
        if name in seen:
            raise BadRequest(f"duplicate label name {name!r} in series {describe(labels)}")
        seen.add(name)
    cleaned = tuple(sorted((n, v) for n, v in labels if v))  # an empty value: no label
    metric = dict(cleaned).get("__name__")
    if metric is None:
        raise BadRequest(f"series without a metric name (__name__): {describe(labels)}")
    return cleaned


class Refusal(NamedTuple):
    """One series of a write request that can never be stored, and why."""

    reason: str  # one line, client text escaped (names the series)
    samples: int  # samples lost with it


class Translated(NamedTuple):
    """A write request split into the series to store (float and native histogram samples)
    and the series refused, and what it carried that no store keeps (exemplars, metadata:
    counted, so the answer and the connector's metrics show them)."""

    series: List[Series]
    refused: List[Refusal]
    exemplars: int = 0
    metadata: int = 0

    @property
    def refused_samples(self) -> int:
        """Samples of the refused series."""
        return sum(refusal.samples for refusal in self.refused)
