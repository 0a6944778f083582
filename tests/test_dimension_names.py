"""Label names <-> Timestream dimension names: classic names as before, any other
UTF-8 name through a reversible escape Timestream accepts."""
import re

import pytest

from chalicelib.storage.timestream.records import dimension_name, label_name

# What Timestream refuses in a dimension name (Naming Constraints, as spelled out in
# https://docs.aws.amazon.com/iot/latest/apireference/API_TimestreamDimension.html and
# the 60-byte limit of https://docs.aws.amazon.com/timestream/latest/developerguide/ts-limits.html).
RESERVED = {"measure_name", "measure_value", "time"}


def timestream_refuses(name: str) -> bool:
    return (name in RESERVED or name.startswith(("ts_", "measure_value")) or ":" in name
            or not name)


CLASSIC = ["job", "instance", "le", "a_b", "_x", "X9", "time", "measure_name", "measure_value",
           "ts_x", "measure_value_y", "__x", "__U__x", "U__x", "__value", "value", "_", "__"]
UTF8 = ["service.name", "http.server.duration", "a:b", ":", "a-b", "0x", "日本語", "ü",
        "😀", "a b", "a\nb", '"quoted"', "back\\slash", "x_y.z", "_.", "._a_", "__U__x.",
        "ts_.x", "time.zone", "measure_value.x", "\u0000", "Ω_1"]


@pytest.mark.parametrize("name", CLASSIC + UTF8)
def test_round_trip_and_accepted_by_timestream(name):
    stored = dimension_name(name)
    assert label_name(stored) == name
    assert not timestream_refuses(stored)


def test_classic_names_are_stored_exactly_as_before():
    # existing tables (and the Go connector's data) stay readable
    assert [dimension_name(n) for n in ["job", "instance", "le", "a_b", "U__x"]] == \
        ["job", "instance", "le", "a_b", "U__x"]
    assert dimension_name("time") == "__time"
    assert dimension_name("__x") == "____x"
    assert label_name("job") == "job"


def test_escape_is_documented_form():
    assert dimension_name("service.name") == "__U__service_2e_name"
    assert dimension_name("a:b") == "__U__a_3a_b"
    assert dimension_name("x_y.z") == "__U__x__y_2e_z"
    assert dimension_name("日本") == "__U___65e5__672c_"
    assert re.fullmatch(r"[A-Za-z0-9_]+", dimension_name("😀 a:b\n"))


def test_no_two_names_share_a_dimension():
    names = CLASSIC + UTF8
    assert len({dimension_name(n) for n in names}) == len(names)


def test_a_dimension_not_written_by_the_escape_reads_as_itself():
    # e.g. a column someone else wrote: read with the classic rule (strip "__"), no crash
    assert label_name("__U__a_zz") == "U__a_zz"
    assert label_name("__U__a_") == "U__a_"
