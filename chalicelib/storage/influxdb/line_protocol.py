"""Series -> InfluxDB line protocol, and the names and values back.

Data model (the one InfluxDB 1.x's own ``/api/v1/prom/write`` writes): measurement =
metric name, every label a tag (``__name__`` included), one float field ``value``.

Line-protocol rules (InfluxDB 1.6 "Line protocol reference",
https://docs.influxdata.com/influxdb/v1.6/write_protocols/line_protocol_reference/ —
"Line protocol does not support the newline character \\n in tag values or field
values" — and measured on influxd 1.6.7): in measurements, tag keys and tag values
a comma, a space (and, in tags, ``=``) are escaped with a backslash; a backslash
before anything else is a literal backslash. What the protocol cannot carry at all
is written in a reversible form, ``base64:`` followed by the URL-safe base64 of the
UTF-8 text (no padding):

- a control character: a newline ends the line (the protocol has no escape for
  it), and InfluxQL's scanner reads a carriage return as a newline and NUL as the
  end of the statement, so no query could name them;
- a backslash before a comma, space or ``=``, or at the end (the parser reads it as
  an escape and the text changes or the line fails to parse);
- a measurement starting with ``#`` (the line would be a comment);
- the tag key ``time`` (refused by InfluxDB) and ``_field``/``_measurement``
  (reserved by 2.x);
- any text that itself starts with ``base64:`` (so decoding is unambiguous).

Values: finite floats as their shortest round-trip text (``repr``), so float64
bits survive. NaN (stale markers included) and ±Inf have no line-protocol form:
such a sample is written with no ``value`` field and a string field ``value_bits``
holding the float64's 16 hex digits (``7ff0000000000002`` is a stale marker,
``7ff0000000000000`` +Inf), which reads back bit for bit.

Native histograms: a point of the same series (measurement and tags) whose string field
``histogram`` holds ``histogram_text.dumps`` (exact, NaN bits included), beside the floats
``histogram_count`` and ``histogram_sum`` for InfluxQL users (each only when finite; a
stale marker has neither, as a stale float sample has no ``value``). InfluxDB 1.8+ and
2.x refuse a string field value over ``MAX_STRING_FIELD_BYTES``: such a histogram is
refused here, naming its series, and never sent.
"""
import base64
import itertools
import math
import re
import struct
from typing import Iterator, List, NamedTuple, Optional, Sequence, Tuple

from chalicelib.caches import ClearedWhenFull, strings_bytes
from chalicelib.model import Histogram, Labels, Series, describe
from chalicelib.storage.histogram_text import dumps

VALUE_FIELD = "value"
BITS_FIELD = "value_bits"
HISTOGRAM_FIELD = "histogram"
HISTOGRAM_COUNT_FIELD = "histogram_count"
HISTOGRAM_SUM_FIELD = "histogram_sum"
#: The fields a float sample / a native histogram sample is written with.
FLOAT_FIELDS = (VALUE_FIELD, BITS_FIELD)
HISTOGRAM_FIELDS = (HISTOGRAM_FIELD, HISTOGRAM_COUNT_FIELD, HISTOGRAM_SUM_FIELD)
#: The longest string field value InfluxDB 1.8+ and 2.x store (tsdb ``MaxFieldValueLength``:
#: "partial write: input field … is too long, N > 1048576"); 1.6 has no limit.
MAX_STRING_FIELD_BYTES = 1_048_576
STALE_BITS = 0x7FF0000000000002
NAME_TAG = "__name__"
ENCODED_PREFIX = "base64:"
RESERVED_KEYS = frozenset({"time", "_field", "_measurement"})
# The series keys an encoder remembers: a memory budget (64 MiB), so a byte more or less
# cannot change what is written.
KEYS_CACHE_MAX_BYTES = 67_108_864  # pragma: no mutate
# What a remembered key holds besides its strings (measured with tracemalloc, see
# tests/unit/storage/influxdb/test_line_protocol.py): per label its pair and slot, at most _LABEL_BYTES; the
# labels' tuple and the dict slot, at most _SET_BYTES. Rounded up: a byte more or less
# only moves the (estimated) bound by that much.
_LABEL_BYTES = 80  # pragma: no mutate
_SET_BYTES = 160  # pragma: no mutate

# A backslash the parser would read as an escape, or a newline.
_UNWRITABLE = re.compile(r"\\(?:[, =]|$)|[\x00-\x1f\x7f]")
_TAG_SPECIAL = re.compile(r"([, =])")
_MEASUREMENT_SPECIAL = re.compile(r"([, ])")


def _encode(text: str) -> str:
    data = base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")
    return ENCODED_PREFIX + data


def needs_encoding(text: str) -> bool:
    """Whether ``text`` cannot be written as is (see the module docstring)."""
    return text.startswith(ENCODED_PREFIX) or _UNWRITABLE.search(text) is not None


def stored_tag(text: str) -> str:
    """The text InfluxDB stores for a tag value (or non-reserved key) ``text``."""
    return _encode(text) if needs_encoding(text) else text


def stored_key(name: str) -> str:
    """The tag key stored for label ``name``."""
    return _encode(name) if name in RESERVED_KEYS or needs_encoding(name) else name


def stored_measurement(name: str) -> str:
    """The measurement stored for metric ``name``."""
    return _encode(name) if name.startswith("#") or needs_encoding(name) else name


def decode(stored: str) -> str:
    """Inverse of the ``stored_*`` functions (text not in the encoded form is returned as is)."""
    if not stored.startswith(ENCODED_PREFIX):
        return stored
    data = stored[len(ENCODED_PREFIX):]
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), altchars=b"-_",
                                validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
        return stored  # written by someone else; keep it literally


def series_key(labels: Labels) -> str:
    """``measurement,tag=value,...`` for a series (tags sorted by stored key)."""
    tags = sorted((stored_key(label), stored_tag(value)) for label, value in labels)
    name = dict(labels).get(NAME_TAG, "")
    measurement = _MEASUREMENT_SPECIAL.sub(r"\\\1", stored_measurement(name))
    return measurement + "".join(
        "," + _TAG_SPECIAL.sub(r"\\\1", key) + "=" + _TAG_SPECIAL.sub(r"\\\1", value)
        for key, value in tags)


def _bits(value: float) -> int:
    (bits,) = struct.unpack("<Q", struct.pack("<d", value))
    return bits


def field_text(value: float) -> str:
    """The field set of one sample: ``value=<repr>`` or ``value_bits="<hex>"``."""
    if math.isfinite(value):
        return f"{VALUE_FIELD}={value!r}"
    return f'{BITS_FIELD}="{_bits(value):016x}"'


def value_from_fields(value: object, bits: object) -> Optional[float]:
    """The sample value of a stored point (``value`` wins if a point has both)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(bits, str):
        return None  # no sample here (or a field of another type, written by someone else)
    try:
        (special,) = struct.unpack("<d", struct.pack("<Q", int(bits, 16)))
    except (ValueError, struct.error):
        return None
    return special


def histogram_fields(histogram: Histogram, text: str) -> str:
    """The field set of a native histogram sample whose ``histogram_text`` is ``text``."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')  # a string field's escapes
    fields = f'{HISTOGRAM_FIELD}="{escaped}"'
    if _bits(histogram.sum) == STALE_BITS:
        return fields
    count, total = float(histogram.count), float(histogram.sum)
    if math.isfinite(count):
        fields += f",{HISTOGRAM_COUNT_FIELD}={count!r}"
    if math.isfinite(total):
        fields += f",{HISTOGRAM_SUM_FIELD}={total!r}"
    return fields


def too_large(labels: Labels, histogram: Histogram, size: int) -> str:
    """Why a native histogram is refused without being sent."""
    return (f"InfluxDB cannot store a native histogram of {size} bytes (string fields hold at "
            f"most {MAX_STRING_FIELD_BYTES}): {describe(labels)} at {histogram.timestamp}")


class LineEncoder:
    """Turns series into lines, remembering each series' escaped key (bounded in bytes)."""

    def __init__(self) -> None:
        self.keys = ClearedWhenFull(KEYS_CACHE_MAX_BYTES)

    def key(self, labels: Labels) -> str:
        """``series_key(labels)``, computed once per series."""
        key = self.keys.get(labels)
        if key is None:
            key = series_key(labels)
            self.keys.put(labels, key, strings_bytes(itertools.chain(*labels, (key,)))
                          + _LABEL_BYTES * len(labels) + _SET_BYTES)
        return key

    @staticmethod
    def float_lines(key: str, item: Series) -> Iterator[str]:
        """One line per float sample; timestamps in milliseconds (``precision=ms``)."""
        for timestamp, value in zip(item.timestamps, item.values):
            if math.isfinite(value):
                yield f"{key} {VALUE_FIELD}={value!r} {timestamp}"
            else:
                yield f"{key} {field_text(value)} {timestamp}"

    @staticmethod
    def histogram_lines(key: str, item: Series, refused: List[str]) -> List[str]:
        """One line per native histogram sample InfluxDB can store; why each other one
        cannot is added to ``refused``."""
        lines = []
        for histogram in item.histograms:
            text = dumps(histogram)  # ASCII: as many bytes as characters
            if len(text) > MAX_STRING_FIELD_BYTES:
                refused.append(too_large(item.labels, histogram, len(text)))
                continue
            lines.append(f"{key} {histogram_fields(histogram, text)} {histogram.timestamp}")
        return lines

    def lines(self, series: Sequence[Series]) -> Iterator[str]:
        """Every line of ``series``: per series its float samples, then its histograms."""
        for item in series:
            key = self.key(item.labels)
            yield from self.float_lines(key, item)
            yield from self.histogram_lines(key, item, [])


class Batch(NamedTuple):
    """The lines of one ``/write`` request, and what they hold."""

    lines: List[bytes]
    histograms: int  # of the lines, those of native histogram samples
    series: List[Series]  # those with lines here (and series without samples), in order
    refused: List[str]  # native histograms never sent: why, each naming its series


def batches(series: Sequence[Series], encoder: LineEncoder, max_lines: int,
            max_bytes: int) -> Iterator[Batch]:
    """The samples of ``series`` as batches of UTF-8 lines, each at most ``max_lines``
    lines and, joined by newlines, at most ``max_bytes`` bytes; a line longer than that
    comes alone (it can never be sent). A batch may hold only refusals."""
    lines: List[bytes] = []
    size = -1  # the newlines between lines: one fewer than the lines
    members: List[Series] = []
    refused: List[str] = []
    histograms = 0

    def item_lines(key: str, item: Series) -> Iterator[Tuple[str, int]]:
        """The lines of ``item``, each with 1 if it holds a histogram: its float lines,
        then its histograms', whose refusals join the batch current once the floats are out."""
        for line in encoder.float_lines(key, item):
            yield line, 0
        for line in encoder.histogram_lines(key, item, refused):
            yield line, 1

    for item in series:
        members.append(item)
        fresh = True  # no line of item in this batch yet
        for line, histogram in item_lines(encoder.key(item.labels), item):
            data = line.encode("utf-8")
            if lines and (len(lines) == max_lines or size + 1 + len(data) > max_bytes):
                yield Batch(lines, histograms, members[:-1] if fresh else members, refused)
                lines, size, histograms, members, refused = [], -1, 0, [item], []
            lines.append(data)
            size += 1 + len(data)
            histograms += histogram
            fresh = False
    if lines or refused:
        yield Batch(lines, histograms, members, refused)
