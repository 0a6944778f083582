"""`make mutation` names real modules and real tests, and reports what it measured."""
import os
import sqlite3

from mutation.run import MODULES, ROOT, Score, Survivor, _keep_sample, report


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
