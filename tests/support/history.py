"""Two days of history as OpenMetrics text, for `promtool tsdb create-blocks-from openmetrics`:
a few dozen series at a 60 s interval, with special values and awkward label values."""
import math
from typing import List

INTERVAL = 60
SPECIAL = {"nan": "NaN", "inf": "+Inf", "ninf": "-Inf", "tiny": "1e-300",
           "sum": "0.30000000000000004"}
LABEL_VALUES = ['say \\"hi\\"', "C:\\\\path", "ünïcødé ✓ 日本", "x' OR '1'='1", ""]


def openmetrics(end: int, seconds: int = 2 * 86_400, hosts: int = 10) -> str:
    """The history ending at Unix second ``end`` (inclusive)."""
    times = range(end - seconds + INTERVAL, end + 1, INTERVAL)
    lines: List[str] = ["# TYPE history_load gauge"]
    for host in range(hosts):
        for step, t in enumerate(times):
            value = 10 + 5 * math.sin(step / 90 + host) + host / 7
            lines.append(f'history_load{{instance="host-{host:02d}",job="node"}} {value!r} {t}')
    lines.append("# TYPE history_requests counter")
    for host in range(hosts):
        for code in ("200", "500"):
            total = 0
            for step, t in enumerate(times):
                total += (step * 7 + host) % 13 + (code == "200") * 40
                lines.append(f'history_requests_total{{code="{code}",instance="host-{host:02d}",'
                             f'job="node"}} {total} {t}')
    lines.append("# TYPE history_special gauge")
    for kind, value in SPECIAL.items():
        for t in times:
            lines.append(f'history_special{{kind="{kind}"}} {value} {t}')
    for index, label in enumerate(LABEL_VALUES):
        for step, t in enumerate(times):
            lines.append(f'history_special{{kind="label{index}",v="{label}"}} {step} {t}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"
