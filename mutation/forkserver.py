"""Runs the tests of one mutant after another without paying pytest's start-up each time.

Started in a module's scratch copy with the third-party packages the tests use already
imported; for each request (one per mutant, from ``mutation/client.py``, cosmic-ray's test
command) it finds the tests that ran the changed statement (``mutation.selection``) and
forks a child that imports the project afresh (the mutated module included) and runs just
those tests. Answers the child's exit status: 0 when the tests pass (the mutant survived).

    python -m mutation.forkserver SOCKET MODULE ORIGINAL COVERAGE DURATIONS TIMEOUT -- PYTEST_ARGS
"""
import gc
import importlib
import os
import signal
import socket
import sys
import threading
import time
from typing import List

#: Exit status for "pytest found nothing to run": the selection is wrong, not the mutant
#: caught; logged to HARNESS_LOG, which the runner checks rather than count it as killed.
HARNESS_ERROR = 100
HARNESS_LOG = "harness-errors.log"


def _preload(names: List[str]) -> None:
    """Import, once for every child, the third-party packages the baseline run imported
    (never the project's own: each child imports those afresh, the mutant included)."""
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a package that cannot be preloaded is just not
            pass
    assert not any(name == "chalicelib" or name.startswith("chalicelib.")
                   for name in sys.modules), "the project must be imported by each child"


class SharedOracle:
    """The tests' Java regex engine (harness/java_regex.py, which imports nothing of the
    project), started once here: each child inherits it instead of starting a JVM. A child
    killed while talking to it can leave it out of step, so it is checked after each
    child and restarted when its answer is not the expected one."""

    PROBE = ("a", ["a", "b", "a", "a", "b"])  # "a" found in each value: 10110

    def __init__(self) -> None:
        from harness import java_regex
        self.module = java_regex
        java_regex.shared()

    def check(self) -> None:
        answer: List[str] = []
        probe = threading.Thread(target=lambda: answer.extend(
            self.module.shared().find([self.PROBE])), daemon=True)
        probe.start()
        probe.join(10)
        if answer != ["10110"]:
            stale = self.module._shared
            self.module._shared = None
            self.module.shared()
            stale.process.kill()
            stale.process.wait()


def _child(tests: List[str], pytest_args: List[str], module: str) -> int:
    import pytest
    from mutation.selection import Only
    os.setpgid(0, 0)  # the server kills the child's whole group on a timeout
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    if not imports(module):
        return 1  # the mutant breaks the module's import: every test of it fails (caught)
    return int(pytest.main(_only_their_files(pytest_args, tests), plugins=[Only(tests)]))


def imports(module: str) -> bool:
    """Whether the module at path ``module`` (e.g. chalicelib/x/y.py) imports. A mutant
    that breaks it fails the tests' conftest, which pytest reports as a usage error rather
    than as failed tests."""
    try:
        importlib.import_module(module[:-len(".py")].replace(os.sep, "."))
    except Exception:  # noqa: BLE001 - any failure to import is the mutant caught
        return False
    return True


def _only_their_files(pytest_args: List[str], tests: List[str]) -> List[str]:
    """``pytest_args`` with the test files narrowed to those holding ``tests`` (collecting a
    file costs an import of it)."""
    files = {test.split("::")[0] for test in tests}
    return [arg for arg in pytest_args if not is_test_file(arg) or arg in files]


def is_test_file(arg: str) -> bool:
    """Whether a pytest argument names a test file (rather than an option or its value)."""
    return arg.startswith("tests/") and arg.endswith(".py")


def _run_one(module: str, original: str, line_tests, timeout: float,
             pytest_args: List[str]) -> int:
    from mutation.selection import changed_lines, statement_lines
    with open(module) as handle:
        mutated = handle.read()
    lines = statement_lines(original, changed_lines(original, mutated))
    tests = line_tests.tests_for(lines)
    if not tests:
        return 0  # no test runs this code: the mutant survives
    # A mutant that makes the tests hang (a loop that never ends) is caught when they take
    # far longer than on the unmutated code.
    timeout = min(timeout, 10 + 3 * sum(line_tests.durations[test] for test in tests))
    pid = os.fork()
    if pid == 0:
        try:
            code = _child(tests, pytest_args, module)
        except BaseException:  # noqa: B036 - whatever happens, the child must not return
            code = 3
        os._exit(HARNESS_ERROR if code in (4, 5) else code)  # usage error, nothing collected
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            if code == HARNESS_ERROR:
                with open(HARNESS_LOG, "a") as log:
                    log.write(f"pytest collected none of {tests}\n")
            return code if code >= 0 else 1  # a signal (a crash) counts as caught
        if time.monotonic() > deadline:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(pid, 0)
            return 1  # a mutant that hangs the tests is caught
        time.sleep(0.01)


def main(argv: List[str]) -> int:
    sock_path, module, original_path, coverage_file, durations, timeout, sep, *pytest_args = argv
    assert sep == "--"
    sys.dont_write_bytecode = True  # a mutant must never be read back from a stale .pyc
    from mutation.selection import LineTests
    line_tests = LineTests(coverage_file, os.path.abspath(module), durations)
    _preload(line_tests.imported)
    oracle = SharedOracle() if line_tests.java else None
    gc.freeze()  # what is loaded now is never collected in a child (pytest collects often)
    with open(original_path) as handle:
        original = handle.read()
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(1)
    server.settimeout(5)
    parent = os.getppid()
    print("ready", flush=True)
    while True:
        try:
            connection, _ = server.accept()
        except socket.timeout:
            if os.getppid() != parent:
                return 0  # the runner is gone (killed): so is its work
            continue
        connection.settimeout(None)
        with connection:
            if connection.recv(16) != b"run":
                return 0
            code = _run_one(module, original, line_tests, float(timeout), pytest_args)
            if oracle is not None:
                oracle.check()
            try:
                connection.sendall(str(code).encode())
            except OSError:
                pass  # the client was killed (cosmic-ray's own timeout)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
