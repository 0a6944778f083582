"""Native histograms as text: one JSON object per histogram sample, the form every backend
stores (a SQLite column, a Timestream VARCHAR measure, an InfluxDB string field).

It is exact and readable by whoever queries the backend directly::

    {"count":12,"sum":3.5,"schema":3,"zero_threshold":1e-128,"zero_count":1,
     "positive_spans":[[0,2],[1,1]],"positive_deltas":[3,-1,0],"reset_hint":"no"}

- integer histograms hold ``positive_deltas``/``negative_deltas`` (as remote write sends
  them), float histograms ``"float":true`` and ``positive_counts``/``negative_counts``;
- empty spans, buckets and ``custom_values``, and ``reset_hint`` "unknown", are left out;
- floats are written in shortest round-trip form; the ones JSON has no number for as
  strings: ``"+Inf"``, ``"-Inf"``, ``"NaN"`` (Prometheus's NaN), ``"StaleNaN"`` (the stale
  marker) and ``"NaN:<16 hex digits>"`` for any other NaN, so every bit is kept.

The timestamp is not in the text: each backend keeps it as the record's time.
"""
import json
import math
import struct
from typing import Any, Dict, List, Union

from chalicelib.model import Histogram

_RESET_HINTS = ("unknown", "yes", "no", "gauge")
_INFINITIES = {"+Inf": math.inf, "-Inf": -math.inf}
_INFINITY_NAMES = {value: name for name, value in _INFINITIES.items()}
_NAMED_NANS = {0x7FF8000000000001: "NaN", 0x7FF0000000000002: "StaleNaN"}
_NAN_BITS = {name: bits for bits, name in _NAMED_NANS.items()}


def _from_bits(bits: int) -> float:
    return struct.unpack(">d", bits.to_bytes(8, "big"))[0]  # pragma: no mutate ([0] is [-1])


def _float(value: float) -> Union[float, str]:
    if math.isfinite(value):
        return value
    if math.isinf(value):
        return _INFINITY_NAMES[value]
    bits = int.from_bytes(struct.pack(">d", value), "big")
    return _NAMED_NANS.get(bits) or f"NaN:{bits:016x}"


def _parse_float(item: Any) -> float:
    if isinstance(item, str):
        if item in _INFINITIES:
            return _INFINITIES[item]
        if item.startswith("NaN:"):
            return _from_bits(int(item[4:], 16))
        return _from_bits(_NAN_BITS[item])
    return float(item)


def dumps(histogram: Histogram) -> str:
    """The histogram (without its timestamp) as compact JSON text."""
    number = _float if histogram.is_float else int
    text: Dict[str, Any] = {"count": number(histogram.count), "sum": _float(histogram.sum),
                            "schema": histogram.schema,
                            "zero_threshold": _float(histogram.zero_threshold),
                            "zero_count": number(histogram.zero_count)}
    if histogram.is_float:
        text["float"] = True
    buckets = "counts" if histogram.is_float else "deltas"
    for side in ("positive", "negative"):
        spans = getattr(histogram, f"{side}_spans")
        if spans:
            text[f"{side}_spans"] = [list(span) for span in spans]
        values = getattr(histogram, side)
        if values:
            text[f"{side}_{buckets}"] = [number(value) for value in values]
    if histogram.reset_hint:  # RESET_UNKNOWN, 0, is left out
        text["reset_hint"] = _RESET_HINTS[histogram.reset_hint]
    if histogram.custom_values:
        text["custom_values"] = [_float(value) for value in histogram.custom_values]
    return json.dumps(text, separators=(",", ":"))


def loads(text: str, timestamp: int) -> Histogram:
    """The histogram ``dumps`` wrote, at ``timestamp``; ValueError if ``text`` is not one."""
    try:
        item = json.loads(text)
        is_float = item.get("float", False) is True
        number = _parse_float if is_float else int
        buckets = "counts" if is_float else "deltas"
        sides: Dict[str, List] = {}
        for side in ("positive", "negative"):
            sides[f"{side}_spans"] = tuple((int(offset), int(length))
                                           for offset, length in item.get(f"{side}_spans", ()))
            sides[side] = tuple(number(value) for value in item.get(f"{side}_{buckets}", ()))
        return Histogram(
            timestamp, number(item["count"]), _parse_float(item["sum"]), int(item["schema"]),
            _parse_float(item["zero_threshold"]), number(item["zero_count"]),
            reset_hint=_RESET_HINTS.index(item.get("reset_hint", "unknown")),
            is_float=is_float,
            custom_values=tuple(map(_parse_float, item.get("custom_values", ()))), **sides)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not a stored native histogram: {exc}") from None
