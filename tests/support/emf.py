"""The Embedded Metric Format specification (CloudWatch User Guide, "Specification: Embedded
metric format"), as a check: ``_aws.Timestamp`` in epoch milliseconds, ``CloudWatchMetrics``
directives each with a ``Namespace``, ``Dimensions`` (arrays of at most 30 keys, each a
top-level member whose value is a string) and ``Metrics`` (each ``Name`` a top-level member
holding a number or an array of at most 100 numbers; ``Unit`` one of CloudWatch's units)."""
import time

UNITS = {"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes",
         "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
         "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second",
         "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second",
         "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"}


def valid_emf(document: dict) -> None:
    """Assert ``document`` is a valid EMF document."""
    meta = document["_aws"]
    assert isinstance(meta["Timestamp"], int)
    assert abs(meta["Timestamp"] - time.time() * 1000) < 60_000
    assert meta["CloudWatchMetrics"]
    for directive in meta["CloudWatchMetrics"]:
        assert isinstance(directive["Namespace"], str) and 1 <= len(directive["Namespace"]) <= 255
        for dimension_set in directive["Dimensions"]:
            assert 1 <= len(dimension_set) <= 30
            for key in dimension_set:
                assert isinstance(document[key], str)
        assert 1 <= len(directive["Metrics"]) <= 100
        for metric in directive["Metrics"]:
            assert metric.get("Unit", "None") in UNITS
            value = document[metric["Name"]]
            numbers = value if isinstance(value, list) else [value]
            assert 1 <= len(numbers) <= 100
            assert all(isinstance(n, (int, float)) for n in numbers)


