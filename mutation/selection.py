"""Which tests can see a mutant: the tests that ran its statement on the unmutated code.

A baseline run (``coverage run ... -m pytest -p mutation.selection``) records, per line
of the mutated module, the tests that executed it (a coverage context per test) and how
long each test took. A mutant is then tested by the tests that executed the statement it
changed, fastest first; a mutant in code run at import time is tested by all of them, and
one in code no test runs survives without a run. A test that never runs a statement cannot
observe a change to it, so this only skips runs whose outcome is known.
"""
import ast
import difflib
import json
import os
import sys
import time
from typing import Dict, Iterable, List, Optional, Set

import coverage
import pytest

#: Where the baseline run writes each test's duration (seconds), by node id, and the
#: third-party packages the tests imported (which the fork server imports once).
DURATIONS_OPTION = "--mutation-durations"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(DURATIONS_OPTION, default=None, help="write test durations (JSON) here")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: Optional[pytest.Item]):
    """Baseline run: give each test its own coverage context and time it."""
    cov = coverage.Coverage.current()
    if cov is not None:
        cov.switch_context(item.nodeid)
    started = time.perf_counter()
    yield
    item.config.stash.setdefault(_DURATIONS, {})[item.nodeid] = time.perf_counter() - started
    if cov is not None:
        cov.switch_context("")


_DURATIONS = pytest.StashKey[Dict[str, float]]()


def pytest_unconfigure(config: pytest.Config) -> None:
    path = config.getoption(DURATIONS_OPTION, None)
    if path:
        with open(path, "w") as handle:
            json.dump({"durations": config.stash.get(_DURATIONS, {}),
                       "imported": third_party_imports(str(config.rootpath)),
                       "java": _started_a_jvm()}, handle)


def _started_a_jvm() -> bool:
    """Whether the tests started the Java regex engine (harness/java_regex.py)."""
    return getattr(sys.modules.get("harness.java_regex"), "_shared", None) is not None


def third_party_imports(project: str) -> List[str]:
    """Modules imported now that are not the project's own (under ``project``, outside the
    virtualenv that may live there too)."""
    inside, venv = (os.path.join(os.path.realpath(path), "") for path in (project, sys.prefix))

    def own(module) -> bool:
        path = os.path.realpath(getattr(module, "__file__", None) or inside)
        return path.startswith(inside) and not path.startswith(venv)

    return sorted(name for name, module in list(sys.modules.items())
                  if not name.startswith("__") and name != "conftest" and not own(module))


class Only:
    """Pytest plugin for one mutant: run just ``tests`` (node ids), in the given order."""

    def __init__(self, tests: List[str]) -> None:
        self.rank = {nodeid: index for index, nodeid in enumerate(tests)}

    def pytest_collection_modifyitems(self, config: pytest.Config,
                                      items: List[pytest.Item]) -> None:
        keep = [item for item in items if item.nodeid in self.rank]
        config.hook.pytest_deselected(items=[i for i in items if i.nodeid not in self.rank])
        items[:] = sorted(keep, key=lambda item: self.rank[item.nodeid])


class LineTests:
    """The baseline's record for one module: tests by line, and their durations."""

    def __init__(self, coverage_file: str, module_path: str, durations_file: str) -> None:
        data = coverage.CoverageData(basename=coverage_file)
        data.read()
        with open(durations_file) as handle:
            baseline = json.load(handle)
        self.durations: Dict[str, float] = baseline["durations"]
        self.imported: List[str] = baseline["imported"]
        self.java: bool = baseline["java"]
        self.by_line: Dict[int, Set[str]] = {
            line: set(contexts) for line, contexts in data.contexts_by_lineno(module_path).items()}

    def tests_for(self, lines: Iterable[int]) -> List[str]:
        """Tests that ran any of ``lines``, fastest first; every test when one of the
        lines ran outside a test (at import)."""
        chosen: Set[str] = set()
        for line in lines:
            chosen |= self.by_line.get(line, set())
        if "" in chosen:
            chosen = set(self.durations)
        chosen &= set(self.durations)  # contexts of tests that ran to the end
        return sorted(chosen, key=lambda nodeid: (self.durations[nodeid], nodeid))


def statement_lines(source: str, lines: Iterable[int]) -> Set[int]:
    """Every line of the innermost statements that hold ``lines`` (a change inside a
    multi-line statement is seen by whichever of its lines the tracer recorded)."""
    wanted = set(lines)
    spans = [(node.lineno, node.end_lineno or node.lineno) for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.stmt)]
    result = set(wanted)
    for line in wanted:
        holding = [span for span in spans if span[0] <= line <= span[1]]
        if holding:
            first, last = min(holding, key=lambda span: span[1] - span[0])
            result.update(range(first, last + 1))
    return result


def changed_lines(original: str, mutated: str) -> Set[int]:
    """Lines (1-based, of ``original``) that the mutation replaced or deleted."""
    matcher = difflib.SequenceMatcher(None, original.splitlines(), mutated.splitlines(),
                                      autojunk=False)
    lines: Set[int] = set()
    for tag, first, last, _, _ in matcher.get_opcodes():
        if tag != "equal":
            lines.update(range(first + 1, max(last, first + 1) + 1))
    return lines
