"""`make mutation` names real modules and real tests, and reports what it measured."""
import os

from mutation.run import MODULES, ROOT, Score, Survivor, report


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
