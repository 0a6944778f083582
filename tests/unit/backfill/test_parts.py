"""Selector parsing, request bounds, checkpoints, retries and the retention check."""
import pytest

from backfill import retention
from backfill.batches import batches, sharded
from backfill.checkpoint import Checkpoint
from backfill.cli import parse_time, slices
from backfill.selector import SelectorError, parse
from backfill.sender import Sender, Stop
from chalicelib.model import Series
from chalicelib.protocol import histograms
from chalicelib.protocol.prompb import types_pb2
from tests.support.histogram_cases import essence, hist

EQ, NEQ, RE, NRE = (types_pb2.LabelMatcher.EQ, types_pb2.LabelMatcher.NEQ,
                    types_pb2.LabelMatcher.RE, types_pb2.LabelMatcher.NRE)


def test_selectors():
    assert parse("up") == [(EQ, "__name__", "up")]
    assert parse('up{job="a\\"b", x!~"c.*",y=~\'d\'}') == [
        (EQ, "__name__", "up"), (EQ, "job", 'a"b'), (NRE, "x", "c.*"), (RE, "y", "d")]
    assert parse('{"http.server.duration", "service.name"!="ü"}') == [
        (EQ, "__name__", "http.server.duration"), (NEQ, "service.name", "ü")]
    assert parse('{__name__=~".+"}') == [(RE, "__name__", ".+")]
    for bad in ("", "{}", '{job=""}', '{x=~".*"}', "up{job=x}", 'up{job="a"'):
        with pytest.raises(SelectorError):
            parse(bad)


def test_times_and_slices():
    assert parse_time("1700000000") == 1_700_000_000_000
    assert parse_time("2023-11-14T22:13:20Z") == 1_700_000_000_000
    assert parse_time("2023-11-14T23:13:20.5+01:00") == 1_700_000_000_500
    assert slices(0, 10, 4) == [(0, 3), (4, 7), (8, 10)]


def test_requests_stay_within_samples_and_bytes_and_keep_every_sample():
    series = [Series((("__name__", f"m{i}"), ("x", "y" * 100)), list(range(2500)),
                     [float(j) for j in range(2500)]) for i in range(10)]
    made = list(batches(series, max_samples=3000, max_bytes=40_000))
    assert all(b.samples <= 3000 and b.request.ByteSize() <= 40_000 for b in made)
    sent = [(ts.labels[0].value, s.timestamp) for b in made for ts in b.request.timeseries
            for s in ts.samples]
    assert sent == [(f"m{i}", j) for i in range(10) for j in range(2500)]
    shards = sharded(series, 3)
    assert sum(b.samples for part in shards for b in part) == 25_000


def test_requests_carry_histograms_within_both_bounds():
    series = [Series((("__name__", f"h{i}"),), [0, 1], [1.0, 2.0],
                     [hist(t, {b: t for b in range(i * 10 + 1)}) for t in range(300)])
              for i in range(3)]
    made = list(batches(series, max_samples=250, max_bytes=8_000))
    assert all(b.samples <= 250 and b.request.ByteSize() <= 8_000 for b in made)
    sent = [(ts.labels[0].value, essence(histograms.from_message(h))) for b in made
            for ts in b.request.timeseries for h in ts.histograms]
    assert sent == [(s.labels[0][1], essence(h)) for s in series for h in s.histograms]
    assert sum(b.samples for b in made) == 3 * 302
    floats = [(ts.labels[0].value, s.timestamp) for b in made for ts in b.request.timeseries
              for s in ts.samples]
    assert floats == [(f"h{i}", t) for i in range(3) for t in (0, 1)]
    assert len(made) > 4 and max(b.request.ByteSize() for b in made) > 7_000  # bytes bound
    by_count = list(batches(series[:1], max_samples=100))
    assert [b.samples for b in by_count] == [100, 100, 100, 2]


def test_a_histogram_larger_than_a_request_is_sent_alone():
    big = Series((("__name__", "big"),), [], [], [hist(0, {b: 1 for b in range(3000)}),
                                                  hist(1, {0: 1})])
    made = list(batches([Series((("__name__", "a"),), [0], [1.0]), big], max_bytes=2_000))
    assert [[len(ts.samples) + len(ts.histograms) for ts in b.request.timeseries]
            for b in made] == [[1], [1], [1]]
    assert made[1].request.ByteSize() > 2_000


def test_checkpoint_survives_a_restart(tmp_path):
    first = Checkpoint(str(tmp_path), "k", {})
    first.complete((0, 9), {"samples": 5})
    again = Checkpoint(str(tmp_path), "k", {})
    assert again.is_done((0, 9)) and not again.is_done((10, 19))
    assert again.totals == {"samples": 5}


class Scripted(Sender):
    def __init__(self, answers):
        super().__init__("http://x")
        self.answers, self.sleeps = list(answers), []
        self.sleep = self.sleeps.append

    def _post(self, body):
        return self.answers.pop(0)


def test_retries_5xx_and_429_then_stops_on_4xx():
    sender = Scripted([(503, None, "x"), (0, None, "refused"), (429, 2.0, "slow"), (204, None, "")])
    assert sender.send(b"", 7).stored == 7
    assert sender.sleeps == [0.03, 0.06, 2.0] and sender.retries == 3
    sender = Scripted([(401, None, "no credentials")])
    with pytest.raises(Stop, match="401: no credentials"):
        sender.send(b"", 1)
    sender = Scripted([(400, None, "2 of 10 samples rejected (8 stored): too old")])
    outcome = sender.send(b"", 10)
    assert (outcome.stored, outcome.rejected, outcome.reasons) == (8, 2, "too old")


def test_retention_problem():
    hour = 3_600_000
    now = 100 * 24 * hour
    table = retention.Table(memory_hours=6, magnetic_writes=False, magnetic_days=365)
    assert retention.problem(table, now - 5 * hour, now) is None
    assert "does not take magnetic-store writes" in retention.problem(table, now - 7 * hour, now)
    table = table._replace(magnetic_writes=True, magnetic_days=1)
    assert retention.problem(table, now - 7 * hour, now) is None
    assert "magnetic store" in retention.problem(table, now - 25 * hour, now)
