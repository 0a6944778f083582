"""The caches: the byte-bounded LRU behind the regex cache, the cleared-when-full dict behind
the label-set caches of the write path, and the LRU of stores per credential."""
import sys

import pytest

from chalicelib.caches import BoundedCache, ClearedWhenFull, LeastRecentlyUsed, strings_bytes
from chalicelib.matchers import _CACHE, REGEX_CACHE_BYTES, compile_anchored


def test_least_recently_used_entries_go_first_and_the_bound_holds():
    cache = BoundedCache(100)
    for key in "abcd":
        cache.put(key, key.upper(), 25)
    assert cache.get("a") == "A"  # now the most recently used
    cache.put("e", "E", 25)
    assert cache.get("b") is None and cache.get("a") == "A" and cache.get("e") == "E"
    assert cache.bytes == 100 and len(cache) == 4
    cache.put("a", "A2", 10)  # replacing an entry counts its new size only
    assert cache.bytes == 85 and cache.get("a") == "A2"


def test_an_entry_over_a_quarter_of_the_bound_is_not_kept():
    cache = BoundedCache(100)
    cache.put("big", "x", 26)
    assert cache.get("big") is None and cache.bytes == 0


def test_the_regex_cache_stays_within_its_bound():
    for i in range(3000):  # ~27 kB each (their RE2 programs): ~80 MB in all
        compile_anchored(f"(?:value{i}|other)+[a-z]{{1,{300 + i % 200}}}", False)
    assert 0 < _CACHE.bytes <= REGEX_CACHE_BYTES and len(_CACHE) < 3000
    assert len(_CACHE) > REGEX_CACHE_BYTES // 50_000  # not overestimated: most that fit are kept
    assert compile_anchored("x{1,20}", False).fullmatch("x" * 20)


def test_a_long_patterns_text_counts_against_the_regex_cache_bound():
    patterns = [f"[{i}" + "a" * 100_000 + "]" for i in range(12)]  # one-instruction classes
    for pattern in patterns:
        assert compile_anchored(pattern, False).fullmatch("a")
    assert 0 < sum(_CACHE.get((p, False)) is not None for p in patterns) < 12
    assert _CACHE.bytes <= REGEX_CACHE_BYTES


def test_a_cleared_when_full_cache_keeps_entries_up_to_its_bound_exactly():
    cache = ClearedWhenFull(10_240)  # entries of up to 10 bytes are kept
    for key in range(1024):
        cache.put(key, str(key), 10)
    assert cache.bytes == 10_240 and len(cache) == 1024
    assert cache.get(0) == "0" and cache.get(1023) == "1023" and cache.get(1024) is None


def test_a_cleared_when_full_cache_is_emptied_by_the_entry_that_would_pass_its_bound():
    cache = ClearedWhenFull(10_240)
    for key in range(1023):
        cache.put(key, str(key), 10)
    cache.put("five", "5", 5)
    assert cache.bytes == 10_235 and len(cache) == 1024  # 5 bytes left
    cache.put("one more", "x", 10)
    assert cache.get("one more") == "x" and cache.get(0) is None and cache.get("five") is None
    assert cache.bytes == 10 and len(cache) == 1
    get = cache.get  # the write path binds get once: it still sees the same entries
    cache.put("next", "y", 10)
    assert get("next") == "y"


def test_a_cleared_when_full_cache_does_not_keep_an_entry_over_a_1024th_of_its_bound():
    cache = ClearedWhenFull(10_240)
    cache.put("fits", "a", 10)
    cache.put("big", "b", 11)
    assert cache.get("big") is None and cache.get("fits") == "a"
    assert cache.bytes == 10 and len(cache) == 1
    odd = ClearedWhenFull(2047)  # 2047 // 1024 == 1: a 2-byte entry is over it
    odd.put("two", "b", 2)
    odd.put("one", "a", 1)
    assert odd.get("two") is None and odd.get("one") == "a"


def test_strings_bytes_counts_each_string_object_once():
    shared = "v" * 1000
    twin = "".join(["v"] * 1000)  # equal, but another object holding its own copy
    assert twin == shared and twin is not shared
    assert strings_bytes([shared, shared, "é" * 10]) == \
        sys.getsizeof(shared) + sys.getsizeof("é" * 10)
    assert strings_bytes([shared, twin]) == 2 * sys.getsizeof(shared)
    assert strings_bytes([]) == 0


def test_the_least_recently_used_store_is_evicted_and_handed_over():
    evicted = []
    cache = LeastRecentlyUsed(2, on_evict=evicted.append)
    a = cache.get_or_make("a", lambda: ["a"])
    cache.get_or_make("b", lambda: ["b"])
    assert cache.get_or_make("a", lambda: pytest.fail("made again")) is a  # now most recent
    cache.get_or_make("c", lambda: ["c"])
    assert evicted == [["b"]] and len(cache) == 2
    assert cache.get_or_make("b", lambda: ["b2"]) == ["b2"]
    assert evicted == [["b"], ["a"]]


def test_a_value_is_made_outside_the_lock():
    cache = LeastRecentlyUsed(4)
    inner = []
    cache.get_or_make("outer", lambda: inner.append(cache.get_or_make("inner", lambda: 1)) or 2)
    assert inner == [1] and len(cache) == 2
