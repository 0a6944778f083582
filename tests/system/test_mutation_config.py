"""`make mutation` names real modules and real tests, and reports what it measured."""
import json
import os
import sqlite3
import subprocess

import coverage

from harness import java_regex
from mutation.forkserver import SharedOracle, _only_their_files
from mutation.run import (MODULES, ROOT, Score, Survivor, _keep_sample, report,
                          run_module)
from mutation.selection import (LineTests, Only, changed_lines,
                                statement_lines, third_party_imports)

pytest_plugins = ["pytester"]


def test_every_core_module_and_its_tests_exist():
    for module, tests in MODULES.items():
        assert os.path.isfile(os.path.join(ROOT, module)), module
        assert tests, module
        files = [t for t in tests if t.startswith("tests/")]
        assert files, module
        for test in files:  # a file, or a test in one (a --deselect argument)
            assert os.path.isfile(os.path.join(ROOT, test.split("::")[0])), test


def test_equivalent_mutants_are_left_out_of_the_score():
    score = Score("m.py", total=12, killed=9, equivalent=2,
                  survivors=[Survivor(3, "core/AddNot", "-a\n+not a")])
    assert score.percent == 90.0
    assert Score("m.py", 0, 0, [], 0).percent == 100.0


def test_report_lists_scores_and_survivors():
    text = report([Score("m.py", 10, 9, [Survivor(7, "core/ReplaceOrWithAnd", "-x or y\n+x and y")],
                         0)])
    assert "| m.py | 10 | 0 | 9 | 90.0 % |" in text
    assert "line 7, core/ReplaceOrWithAnd" in text
    assert "+x and y" in text


def test_a_sample_keeps_that_many_mutants_and_says_so(tmp_path):
    session = str(tmp_path / "session.sqlite")
    with sqlite3.connect(session) as db:
        db.execute("CREATE TABLE work_items (job_id VARCHAR PRIMARY KEY)")
        db.execute("CREATE TABLE mutation_specs (job_id VARCHAR PRIMARY KEY, start_pos_row,"
                   " start_pos_col, operator_name, occurrence)")
        db.execute("CREATE TABLE work_results (job_id VARCHAR PRIMARY KEY, worker_outcome)")
        for job in range(10):
            db.execute("INSERT INTO work_items VALUES (?)", (str(job),))
            db.execute("INSERT INTO mutation_specs VALUES (?, ?, 0, 'op', 0)", (str(job), job))
        db.execute("INSERT INTO work_results VALUES ('3', 'skipped')")  # an equivalent one
    assert _keep_sample(session, 4) == 10
    with sqlite3.connect(session) as db:
        left = {row[0] for row in db.execute("SELECT job_id FROM work_items")}
    assert len(left) == 5 and "3" in left  # four to run, and the equivalent one kept
    text = report([Score("m.py", 5, 4, [], 1, of=10)])
    assert "| m.py (sample of 10) | 5 | 1 | 4 | 100.0 % |" in text


def test_a_mutant_is_located_by_the_lines_it_replaces():
    original = "a = 1\nb = 2\nc = 3\n"
    assert changed_lines(original, "a = 1\nb = 3\nc = 3\n") == {2}
    assert changed_lines(original, "a = 1\npass\nc = 3\n") == {2}
    assert changed_lines(original, original) == set()


def test_a_change_inside_a_statement_counts_every_line_of_that_statement():
    source = "def f(x):\n    y = (x +\n         1)\n    return y\n"
    assert statement_lines(source, {3}) == {2, 3}
    assert statement_lines(source, {4}) == {4}
    assert statement_lines(source, {1}) == {1, 2, 3, 4}  # the def: every line of it


def _test_map(tmp_path, contexts_by_line, durations):
    data = coverage.CoverageData(basename=str(tmp_path / "cov"))
    for line, contexts in contexts_by_line.items():
        for context in contexts:
            data.set_context(context)
            data.add_lines({"/m.py": {line: None}})
    data.write()
    (tmp_path / "durations").write_text(json.dumps({"durations": durations, "imported": [], "java": False}))
    return LineTests(str(tmp_path / "cov"), "/m.py", str(tmp_path / "durations"))


def test_only_the_tests_that_ran_a_line_test_its_mutants_fastest_first(tmp_path):
    test_map = _test_map(tmp_path, {3: ["t::slow", "t::fast"], 4: ["t::other"], 9: []},
                         {"t::slow": 2.0, "t::fast": 0.1, "t::other": 0.5, "t::none": 0.2})
    assert test_map.tests_for({3}) == ["t::fast", "t::slow"]
    assert test_map.tests_for({3, 4}) == ["t::fast", "t::other", "t::slow"]
    assert test_map.tests_for({7}) == []  # no test ran it: the mutant survives untested


def test_a_line_run_at_import_is_tested_by_every_test(tmp_path):
    test_map = _test_map(tmp_path, {1: [""], 3: ["t::a"]}, {"t::a": 1.0, "t::b": 0.5})
    assert test_map.tests_for({1}) == ["t::b", "t::a"]


def test_a_mutant_runs_only_its_tests_in_the_order_given(pytester):
    pytester.makepyfile(test_x="def test_a(): pass\ndef test_b(): pass\ndef test_c(): pass\n")
    result = pytester.runpytest("-v", plugins=[Only(["test_x.py::test_c", "test_x.py::test_a"])])
    result.assert_outcomes(passed=2, deselected=1)
    result.stdout.fnmatch_lines(["*test_c PASSED*", "*test_a PASSED*"])


def test_the_runner_kills_what_the_tests_see_and_reports_what_they_miss(tmp_path):
    """The whole of make mutation's run on a toy project: a mutant the test observes is
    caught; one on a line no test runs survives and is reported with its line."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "calc.py").write_text(
        "def price(count):\n"
        "    if count > 10:\n"
        "        return count * 2\n"
        "    return count\n")
    (tmp_path / "tests" / "test_calc.py").write_text(
        "from calc import price\n\n\n"
        "def test_small_orders_cost_their_count():\n"
        "    assert price(3) == 3\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    score = run_module("calc.py", ["tests/test_calc.py"], timeout=60, root=str(tmp_path))
    changed = [s.diff for s in score.survivors]
    assert any("+        return count / 2" in d or "+        return count + 2" in d
               for d in changed)  # line 3: no test runs it
    assert {s.line for s in score.survivors} >= {3}
    assert not any("count < 10" in d for d in changed)  # price(3) would be 6: caught
    assert not any("+    return None" in d for d in changed)  # line 4: caught
    assert 0 < score.killed < score.total


def test_the_fork_server_preloads_what_the_tests_imported_except_the_project():
    imported = third_party_imports(ROOT)
    assert "pytest" in imported and "google.protobuf.message" in imported
    assert not any(name.split(".")[0] in ("chalicelib", "tests", "mutation", "app")
                   for name in imported)


def test_a_mutant_collects_only_the_files_of_its_tests():
    args = ["-x", "-q", "tests/test_a.py", "tests/test_b.py", "-k", "not slow",
            "--deselect", "tests/test_b.py::test_z"]
    assert _only_their_files(args, ["tests/test_b.py::test_y"]) == [
        "-x", "-q", "tests/test_b.py", "-k", "not slow", "--deselect", "tests/test_b.py::test_z"]


def test_a_jvm_left_out_of_step_by_a_killed_child_is_restarted():
    oracle = SharedOracle()
    jvm = java_regex.shared()
    jvm.process.stdin.write("x61 x61\n")  # a question whose answer nobody reads
    jvm.process.stdin.flush()
    oracle.check()
    assert java_regex.shared() is not jvm and jvm.process.poll() is not None
    assert java_regex.shared().find([("a", ["a", "b"])]) == ["10"]
    oracle.check()  # in step: kept
    assert java_regex.shared().process.poll() is None


def test_a_mutant_that_breaks_its_modules_import_counts_as_caught(tmp_path, monkeypatch):
    """pytest reports a conftest that cannot import the mutated module as a usage error (4),
    not as failed tests: the child checks the import first."""
    from mutation.forkserver import imports
    package = tmp_path / "mutpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "fine.py").write_text("VALUE = 1\n")
    (package / "broken.py").write_text("from typing import NamedTuple\n"
                                       "class T(NamedTuple):\n    a: int = 1\n    b: int\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert imports(os.path.join("mutpkg", "fine.py"))
    assert not imports(os.path.join("mutpkg", "broken.py"))
