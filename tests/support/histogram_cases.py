"""Native histogram samples for the chunk tests: built from absolute bucket counts, compared
by what they hold, and random walks of a series through what changes a histogram chunk
(new and vanishing buckets, counter resets, schema and zero-threshold changes, stale
markers, integer/float and gauge/counter switches)."""
import math
import random
import struct
from typing import Dict, List, Optional, Sequence, Tuple

from chalicelib.model import RESET_GAUGE, RESET_NO, RESET_UNKNOWN, RESET_YES, Histogram

STALE = struct.unpack(">d", struct.pack(">Q", 0x7FF0000000000002))[0]
NAN = struct.unpack(">d", struct.pack(">Q", 0x7FF8000000000001))[0]
DEFAULT_THRESHOLD = 2.0 ** -128


def bits(value: float) -> int:
    return struct.unpack(">Q", struct.pack(">d", value))[0]


def spans_of(indices: Sequence[int]) -> Tuple[Tuple[int, int], ...]:
    spans: List[List[int]] = []
    following = 0
    for index in sorted(indices):
        if spans and index == following:
            spans[-1][1] += 1
        else:
            spans.append([index - following, 1])
        following = index + 1
    return tuple((o, n) for o, n in spans)


def indices_of(spans) -> List[int]:
    out, index = [], 0
    for offset, length in spans:
        index += offset
        out.extend(range(index, index + length))
        index += length
    return out


def hist(t: int, positive: Optional[Dict[int, float]] = None,
         negative: Optional[Dict[int, float]] = None, zero=0, extra=0, schema: int = 0,
         threshold: float = DEFAULT_THRESHOLD, is_float: bool = False, hint: int = RESET_UNKNOWN,
         total: Optional[float] = None, positive_spans=None, negative_spans=None,
         custom_values=()) -> Histogram:
    """A histogram from absolute bucket counts by index (spans: the fewest, unless
    given); count = zero + buckets + ``extra``."""
    positive, negative = positive or {}, negative or {}
    p_spans = spans_of(positive) if positive_spans is None else tuple(positive_spans)
    n_spans = spans_of(negative) if negative_spans is None else tuple(negative_spans)
    p_counts = [positive.get(i, 0) for i in indices_of(p_spans)]
    n_counts = [negative.get(i, 0) for i in indices_of(n_spans)]
    count = zero + sum(p_counts) + sum(n_counts) + extra
    if is_float:
        p_values, n_values = tuple(map(float, p_counts)), tuple(map(float, n_counts))
        count, zero = float(count), float(zero)
    else:
        p_values, n_values = deltas(p_counts), deltas(n_counts)
    return Histogram(t, count, float(count) * 0.25 if total is None else total, schema,
                     threshold, zero, p_spans, p_values, n_spans, n_values, hint, is_float,
                     tuple(custom_values))


def deltas(counts: Sequence[int]) -> Tuple[int, ...]:
    out, last = [], 0
    for count in counts:
        out.append(int(count) - last)
        last = int(count)
    return tuple(out)


def stale(t: int, is_float: bool = False, hint: int = RESET_UNKNOWN) -> Histogram:
    """A stale marker (a float one counts 1: Prometheus 2.42's receiver takes a histogram
    for a float one only when its count or zero count is above 0)."""
    return Histogram(t, 1.0 if is_float else 0, STALE, 0, 0.0, 0.0 if is_float else 0,
                     reset_hint=hint, is_float=is_float)


def absolute(spans, values, is_float: bool) -> Dict[int, float]:
    """Bucket index -> count (a float count as its bits), empty buckets left out."""
    counts, total = [], 0
    for value in values:
        total = value if is_float else total + value
        counts.append(total)
    return {i: bits(c) if is_float else c for i, c in zip(indices_of(spans), counts) if c != 0}


def essence(h: Histogram) -> tuple:
    """What a histogram holds, whatever its layout and reset hint; a stale marker is only
    that (Prometheus stores it empty)."""
    if bits(h.sum) == 0x7FF0000000000002:
        return (h.timestamp, h.is_float, "stale")
    kind = float if h.is_float else int
    return (h.timestamp, h.is_float, bits(kind(h.count)), bits(kind(h.zero_count)),
            bits(h.sum), h.schema, bits(h.zero_threshold) if h.zero_threshold else 0,
            absolute(h.positive_spans, h.positive, h.is_float),
            absolute(h.negative_spans, h.negative, h.is_float), tuple(h.custom_values))


#: What a walk step does before it emits the next sample.
ACTIONS = ("grow", "grow", "grow", "new", "new_negative", "drop", "decrease", "reset", "zero",
           "schema", "threshold", "stale", "kind", "gauge", "hint_reset", "hint_no", "jump",
           "repeat", "nan_sum", "split_spans")
THRESHOLDS = (DEFAULT_THRESHOLD, 0.0, 0.001, 2.0 ** -243, 1024.0, 2.0 ** 11, 3.0)


def walk(steps: Sequence[Tuple[int, int]], start: int = 1_700_000_000_000,
         interval: int = 1000, float_first: bool = False) -> List[Histogram]:
    """One series' histograms: each (action, amount) step changes the histogram, then
    appends a sample. Valid for Prometheus (bucket counts at least 0, count at least the
    buckets, float histograms counting above 0)."""
    t = start
    positive: Dict[int, float] = {0: 1, 1: 2}
    negative: Dict[int, float] = {}
    state = {"zero": 1, "schema": 0, "threshold": DEFAULT_THRESHOLD, "float": float_first,
             "gauge": False, "sum": 0.0, "split": False}
    out: List[Histogram] = []
    for action_index, amount in steps:
        action = ACTIONS[action_index % len(ACTIONS)]
        hint = RESET_GAUGE if state["gauge"] else RESET_UNKNOWN
        is_float = state["float"]
        step = 0.5 if is_float else 1
        if action == "grow":
            for index in list(positive)[: abs(amount) % 5 + 1]:
                positive[index] += step * (abs(amount) % 3 + 1)
            for index in list(negative)[: abs(amount) % 2 + 1]:
                negative[index] += step
            state["sum"] += amount * 0.37
        elif action == "new":
            positive[amount * 3 - 20] = positive.get(amount * 3 - 20, 0) + step
        elif action == "new_negative":
            negative[amount * 2 - 9] = negative.get(amount * 2 - 9, 0) + 2 * step
        elif action == "drop" and positive:
            del positive[sorted(positive)[abs(amount) % len(positive)]]
        elif action == "decrease" and positive:
            index = sorted(positive)[abs(amount) % len(positive)]
            positive[index] = max(0, positive[index] - step * (abs(amount) % 3 + 1))
        elif action == "reset":
            positive = {i: (c if abs(amount) % 2 else 0) for i, c in list(positive.items())[:2]}
            negative = {}
            state["zero"] = 0
            state["sum"] = 0.0
        elif action == "zero":
            state["zero"] = max(0, state["zero"] + amount % 7 - 2)
        elif action == "schema":
            state["schema"] = (state["schema"] + amount % 5 + 5) % 13 - 4
        elif action == "threshold":
            state["threshold"] = THRESHOLDS[abs(amount) % len(THRESHOLDS)]
        elif action == "stale":
            out.append(stale(t, is_float, hint))
            t += interval
            continue
        elif action == "kind":
            state["float"] = not is_float
            if is_float:  # back to integers
                positive = {i: math.floor(c) for i, c in positive.items()}
                negative = {i: math.floor(c) for i, c in negative.items()}
                state["zero"] = math.floor(state["zero"])
        elif action == "gauge":
            state["gauge"] = not state["gauge"]
        elif action == "hint_reset":
            hint = RESET_YES if not state["gauge"] else hint
        elif action == "hint_no":
            hint = RESET_NO if not state["gauge"] else hint
        elif action == "jump":
            t += abs(amount) * 15_000
        elif action == "nan_sum":
            state["sum"] = NAN if amount % 2 else float(amount)
        elif action == "split_spans":
            state["split"] = not state["split"]
        is_float = state["float"]
        p_spans = None
        if state["split"] and positive:  # one span per bucket (offsets 0 between neighbours)
            order = sorted(positive)
            p_spans = tuple((index - (order[n - 1] + 1 if n else 0), 1)
                            for n, index in enumerate(order))
        out.append(hist(t, dict(positive), dict(negative), zero=state["zero"],
                        extra=1 if is_float else 0, schema=state["schema"],
                        threshold=state["threshold"], is_float=is_float, hint=hint,
                        total=state["sum"], positive_spans=p_spans))
        t += interval
    return out


def random_steps(rng: random.Random, count: int, weights=None) -> List[Tuple[int, int]]:
    """``count`` steps, mostly growth."""
    actions = list(range(len(ACTIONS)))
    weights = weights or [12 if ACTIONS[a] == "grow" else 1 for a in actions]
    return [(rng.choices(actions, weights)[0], rng.randint(-3, 40)) for _ in range(count)]
