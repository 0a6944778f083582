"""What native histograms cost: their WriteRecords calls metered as Timestream bills them,
and `make cost`'s write report (the Go connector writes none: compared on floats)."""
from bench.cost import write_lines
from chalicelib.model import Histogram, Series
from chalicelib.storage.histogram_text import dumps
from chalicelib.storage.timestream import metering, records
from harness.timestream.env import NOW_MS

H = Histogram(0, 3, 1.5, 0, 0.0, 1, positive_spans=((0, 2),), positive=(1, 0))


def test_a_multi_record_counts_its_measures_names_and_values_and_no_double_value():
    values = records.histogram_measure_values(H)
    record = {"Time": "1", "MeasureName": "h#histogram", "MeasureValues": values,
              "Dimensions": [{"Name": "job", "Value": "a"}]}
    size = 8 + len("h#histogram") + len("joba") + len("__histogram") + len(dumps(H)) + len(
        "__histogram_count") + 8 + len("__histogram_sum") + 8  # time, names, values
    assert size < 1024
    assert metering.call_units({}, [record]) == 1
    assert metering.call_units({}, [record] * (1024 // size)) == 1
    assert metering.call_units({}, [record] * (1024 // size + 1)) == 2
    # what CommonAttributes carry counts once
    common = {"MeasureName": "h#histogram", "Time": "1",
              "Dimensions": [{"Name": "job", "Value": "a"}]}
    shared = {"MeasureValues": values}
    each = size - 8 - len("h#histogram") - len("joba")
    assert metering.call_units(common, [shared] * ((1024 - 8 - 15) // each)) == 1
    assert metering.call_units(common, [shared] * ((1024 - 8 - 15) // each + 1)) == 2


def test_the_cost_report_meters_histograms_and_compares_floats_with_the_go_connector():
    floats = [Series((("__name__", "up"), ("job", "a")), [NOW_MS], [1.0])]
    mixed = floats + [Series((("__name__", "h"), ("job", "a")), [NOW_MS], [2.0],
                             [H._replace(timestamp=NOW_MS - i) for i in range(10)])]
    plain = write_lines([floats], 10, NOW_MS)
    assert plain[0] == "1 requests, 1 samples in 10 s: 0.1 samples/s"
    assert [line.split()[:2] for line in plain[3:5]] == [["this", "connector"],
                                                        ["Go", "connector"]]
    lines = write_lines([mixed], 10, NOW_MS)
    assert lines[0] == ("1 requests, 12 samples in 10 s: 1.2 samples/s "
                        "(10 of them native histogram samples)")
    assert [line[:28].strip() for line in lines[3:6]] == [
        "this connector", "this connector, floats only", "Go connector"]
    ours = metering.connector_units(mixed, NOW_MS)
    only_floats = metering.connector_units(
        [s._replace(histograms=()) for s in mixed], NOW_MS)
    go = metering.go_units(mixed)
    assert ours > only_floats
    month = 30 * 86_400
    assert [int(line[28:45].replace(",", "")) for line in lines[3:6]] == [
        round(units / 10 * month) for units in (ours, only_floats, go)]
    assert lines[6] == ("the Go connector writes no native histograms: it is compared on "
                        "the 2 float samples")
    assert lines[7] == f"ratio: {only_floats / go:.2f}x the Go connector's metered writes"
    per_million = [float(line[-14:].replace(",", "")) for line in lines[3:6]]
    assert per_million == [round(ours / 12 * 1e6), round(only_floats / 2 * 1e6),
                           round(go / 2 * 1e6)]
