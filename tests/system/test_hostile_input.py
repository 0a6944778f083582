"""A bad-input battery through the real server (`make run`): every case gets a 4xx that
says what was wrong (or a correct answer), the server stays up, and nothing stored
is lost. Time is bounded for the whole battery, never asserted per request."""
import gzip
import os
import re
import sys
import threading

import pytest

from chalicelib.protocol import codec
from harness.processes import Process, free_port, wait_for_port
from harness.remote import (HEADERS, post, read_request, remote_read,
                            remote_write, write_request)

EVIL = "a" * 10_000 + "!"
BIG = "b" * (1 << 20)
BATTERY_SECONDS = 300  # the whole battery; a backtracking engine needs hours for it


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("hostile")
    port = free_port()
    env = dict(os.environ, PORT=str(port), DATA_DIR=str(tmp_path / "data"))
    proc = Process(["make", "--no-print-directory", "run", f"VENV={sys.prefix}"],
                   str(tmp_path / "server.log"), env=env)
    try:
        wait_for_port(port, proc.proc, timeout=120)
        url = f"http://127.0.0.1:{port}"
        kept = write_request(({"__name__": "kept", "k": "v"}, [(t, t / 7) for t in range(500)]))
        assert remote_write(url, kept)[0] == 204
        yield url, proc
        # Whatever the battery did, the server is up and what it acknowledged is there.
        assert proc.proc.poll() is None
        result = remote_read(url, read_request((0, 1000, [(0, "__name__", "kept")])))
        assert [(s.timestamp, s.value) for s in result.results[0].timeseries[0].samples] == \
            [(t, t / 7) for t in range(500)]
    finally:
        proc.stop()


def read_status(url, *queries):
    status, _, body = post(url + "/read", codec.encode_message(read_request(*queries)), HEADERS)
    return status, body.decode("utf-8", "replace") if status != 200 else body


def regex_query(pattern, name="k"):
    return (0, 10_000, [(0, "__name__", "evil"), (2, name, pattern)])


PATHOLOGICAL = ["(a+)+b", "(a|a)+b", "(a|aa)+b", "(.*a){20}b", "(a*)*b", "((a+)+)+b",
                "(?:a+?)+b", "(x+x+)+y", "(a|[a-z])+!?b"]


def test_pathological_regexes_answer_without_stalling_writes(server):
    url, _ = server
    assert remote_write(url, write_request(
        *[({"__name__": "evil", "k": EVIL, "i": str(i)}, [(1, 1.0)]) for i in range(20)]))[0] == 204
    outcomes, writes = [], []

    def reads():
        for pattern in PATHOLOGICAL:
            status, body = read_status(url, regex_query(pattern))
            outcomes.append((pattern, status))

    def writer():
        for i in range(20):
            writes.append(remote_write(url, write_request(
                ({"__name__": "during", "i": str(i)}, [(1, 1.0)])))[0])

    threads = [threading.Thread(target=reads), threading.Thread(target=writer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BATTERY_SECONDS)
    assert not any(t.is_alive() for t in threads), "the server stalled"
    assert outcomes == [(p, 200) for p in PATHOLOGICAL]
    assert writes == [204] * 20


@pytest.mark.parametrize("pattern,reason", [
    ("(" * 1000 + "a" + ")" * 1000, "nests too deeply"),
    ("(" * 100_000 + ")" * 100_000, "nests too deeply"),
    ("(?:" * 5000 + ")" * 5000, "nests too deeply"),
    ("a{1001}", "invalid repetition size: {1001}"),
    ("(a{1000}){1000}", "invalid repetition size"),
    ("((a{100}){100}){100}", "invalid repetition size"),
    ("\\pL{1000}", "pattern too large"),
    ("[\\p{L}\\p{N}]{1000}", "pattern too large"),
    ("(?=x)", "invalid perl operator"),
    ("\\1", "invalid escape sequence"),
    ("\\C", "invalid escape sequence"),
    ("x\x1b[31m(", "missing ]"),
])
def test_bad_regexes_are_400_with_the_reason(server, pattern, reason):
    url, _ = server
    status, body = read_status(url, regex_query(pattern))
    assert status == 400 and reason in body, (status, body[:300])
    assert "\x1b" not in body and len(body) < 1000


def test_deeply_nested_but_allowed_regex_answers(server):
    url, _ = server
    status, _ = read_status(url, regex_query("(" * 999 + "a*" + ")" * 999 + "!"))
    assert status == 200


def test_query_count_is_capped(server):
    url, _ = server
    status, body = read_status(url, *[regex_query("(a+)+b")] * 65)
    assert status == 400 and "65 queries in one read request, over the limit of 64" in body
    assert read_status(url, *[regex_query("(a+)+b")] * 64)[0] == 200


def test_many_large_regexes_in_a_small_request_are_refused_early(server):
    """100 distinct matchers like \\pL{300}q7 (under 1 KB of request) would compile 100 RE2
    programs of ~359 000 instructions (~20 s of CPU, ~800 MB): the request's regex budget
    refuses it after the third, and the server answers others meanwhile."""
    url, proc = server
    before = cpu_seconds(proc.proc.pid)
    query = [(0, "__name__", "evil")] + [(3, "k", f"\\pL{{300}}q{i}") for i in range(100)]
    status, body = read_status(url, (0, 10_000, query))
    assert status == 400, body
    assert "compile to more than 1000000 RE2 instructions in all" in body
    assert cpu_seconds(proc.proc.pid) - before < 10  # about 3 x 0.2 s here
    assert read_status(url, regex_query("a.*"))[0] == 200


def cpu_seconds(pid):
    """CPU time of a process and its children (the make run's server is a child)."""
    total = 0.0
    for task in [pid] + children(pid):
        with open(f"/proc/{task}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            kids = [int(k) for k in handle.read().split()]
    except FileNotFoundError:
        return []
    return kids + [g for k in kids for g in children(k)]


def test_big_labels_stop_at_the_byte_limit(server):
    url, _ = server
    assert remote_write(url, write_request(({"__name__": "big", "v": BIG}, [(1, 1.0)])))[0] == 204
    status, body = read_status(url, *[(0, 10, [(0, "__name__", "big")])] * 64)
    assert status == 200  # 64 MiB of labels: within the default 80 MiB
    status, body = read_status(url, *[(0, 10, [(0, "__name__", "big"), (2, "v", "b*")])] * 64)
    assert status == 200
    assert remote_write(url, write_request(
        *[({"__name__": "big", "v": BIG, "i": str(i)}, [(1, 1.0)]) for i in range(20)]))[0] == 204
    status, body = read_status(url, *[(0, 10, [(0, "__name__", "big")])] * 8)
    assert status == 400 and "READ_BYTE_LIMIT" in body


def test_mixed_valid_and_invalid_series(server):
    url, _ = server
    good = [({"__name__": "mixed", "i": str(i)}, [(1, float(i))]) for i in range(10)]
    bad = [({"__name__": "", "i": "x"}, [(1, 1.0)]), ({"i": "no name"}, [(1, 1.0), (2, 2.0)])]
    status, body = remote_write(url, write_request(good[0], bad[0], *good[1:], bad[1]))
    text = body.decode()
    assert status == 400 and text.startswith("3 of 13 samples rejected (10 stored; "
                                             "2 series refused): "), text
    result = remote_read(url, read_request((0, 10, [(0, "__name__", "mixed")])))
    assert len(result.results[0].timeseries) == 10


def test_control_characters_are_escaped_in_bodies_and_logs(server):
    url, proc = server
    forged = "v\x1b[2J\r\n2099-01-01 00:00:00 ERROR forged line\u2028\x00"
    status, body = remote_write(url, write_request(({"i": forged}, [(1, 1.0)])))
    text = body.decode()
    assert status == 400 and "\\x1b[2J\\r\\n2099-01-01" in text and "\\u2028\\x00" in text
    assert text.rstrip("\n").isprintable()
    status, text = read_status(url, regex_query("(" + forged))
    assert status == 400 and text.rstrip("\n").isprintable()
    log = proc.log()
    assert "\x1b" not in log and "\u2028" not in log and "\x00" not in log
    assert not re.search(r"^2099-01-01", log, re.M)


@pytest.mark.parametrize("body,reason", [
    (b"\x05abc", "corrupt or truncated"),
    (b"\xff\x06\x00\x00sNaPpY\x01\x02\x03", "snappy *framed*"),
    (gzip.compress(b"hello"), "gzip"),
    (b"(\xb5/\xfd\x20\x05\x29\x00\x00hello", "zstd"),
    (b'{"timeseries": []}', "JSON"),
    (b"\x80\x80\x80\x80\x80\x80", "bad length preamble"),
    (b"", "empty body"),
])
def test_invalid_snappy_bodies_say_why(server, body, reason):
    url, _ = server
    for path in ("/write", "/read"):
        status, _, text = post(url + path, body, HEADERS)
        assert status == 400 and reason in text.decode(), (path, text)


def test_unknown_matcher_type_and_bad_ranges(server):
    url, _ = server
    status, body = read_status(url, (0, 10, [(7, "__name__", "x")]))
    assert status == 400 and "unknown matcher type 7" in body
    status, body = read_status(url, (10, 0, [(0, "__name__", "x")]))
    assert status == 400 and "before" in body


def test_a_small_body_of_600k_new_series_costs_at_most_the_deadline(tmp_path):
    """3 MB of tiny new series: translated and stored under the request's deadline or not
    at all (503, nothing stored), and a writer waiting behind it waits no longer."""
    import time
    port = free_port()
    env = dict(os.environ, PORT=str(port), DATA_DIR=str(tmp_path / "data"),
               REQUEST_DEADLINE_SECONDS="3")
    proc = Process(["make", "--no-print-directory", "run", f"VENV={sys.prefix}"],
                   str(tmp_path / "server.log"), env=env)
    try:
        wait_for_port(port, proc.proc, timeout=120)
        url = f"http://127.0.0.1:{port}"
        body = codec.encode_message(write_request(
            *[({"__name__": "many", "i": str(i)}, [(1, 1.0)]) for i in range(600_000)]))
        assert len(body) < 4 << 20
        answers = {}

        def small_write():
            time.sleep(1)
            started = time.monotonic()
            answers["small"] = remote_write(url, write_request(
                ({"__name__": "small"}, [(1, 1.0)])))[0], time.monotonic() - started
        other = threading.Thread(target=small_write)
        other.start()
        started = time.monotonic()
        status, _, text = post(url + "/write", body, HEADERS)
        took = time.monotonic() - started
        other.join()
        assert status == 503 and b"request deadline" in text, text[:300]
        assert took < 8  # the 3 s deadline and a margin (translating it all takes ~10 s)
        assert answers["small"][0] in (204, 503) and answers["small"][1] < 8
        assert read_status(url, (0, 10, [(0, "__name__", "many")]))[0] == 200
        assert remote_read(url, read_request((0, 10, [(0, "__name__", "many")]))) \
            .results[0].timeseries == []
    finally:
        proc.stop()
