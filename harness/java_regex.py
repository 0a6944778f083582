"""java.util.regex, the engine Timestream's ``regexp_like`` runs, for the tests.

One JVM per test process runs harness/java/RegexOracle.java; it is started on first use
and stopped when the process exits. ``regexp_like`` is what Timestream answers (a
contains-match, ``Matcher.find()``); an invalid pattern raises, as the query would fail.
"""
import atexit
import os
import shutil
import subprocess
import threading
from functools import lru_cache
from typing import List, Optional, Sequence, Tuple

ORACLE = os.path.join(os.path.dirname(__file__), "java", "RegexOracle.java")


class JavaRegex:
    """A running RegexOracle: batches of (pattern, values) in, match answers out."""

    def __init__(self) -> None:
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("`java` is needed for the tests "
                               "(apt-get install openjdk-17-jre-headless; .ci/run does)")
        self.process = subprocess.Popen([java, ORACLE], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, encoding="ascii")
        self.lock = threading.Lock()

    @staticmethod
    def _token(text: str) -> str:
        return "x" + text.encode("utf-8").hex()

    def find(self, cases: Sequence[Tuple[str, Sequence[str]]]) -> List[str]:
        """For each (java_pattern, values): one '1'/'0' per value ('S': Java's stack
        overflowed), or 'E' and Java's message if the pattern does not compile."""
        lines = [" ".join([self._token(p)] + [self._token(v) for v in values]) + "\n"
                 for p, values in cases]

        def write() -> None:  # while the answers are read: no pipe can fill up
            self.process.stdin.writelines(lines)
            self.process.stdin.flush()

        with self.lock:
            writer = threading.Thread(target=write)
            writer.start()
            answers = [self.process.stdout.readline().rstrip("\n") for _ in lines]
            writer.join()
        if any(not answer and values for answer, (_, values) in zip(answers, cases)):
            raise RuntimeError("the Java regex oracle stopped")
        return answers

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


_shared: Optional[JavaRegex] = None
_shared_lock = threading.Lock()


def shared() -> JavaRegex:
    """This process's JVM, started on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = JavaRegex()
            atexit.register(_shared.close)
        return _shared


@lru_cache(maxsize=65536)
def regexp_like(value: str, pattern: str) -> bool:
    """Timestream's ``regexp_like(value, pattern)``: Java's contains-match."""
    [answer] = shared().find([(pattern, [value])])
    if answer.startswith("E"):
        raise ValueError(f"invalid Java regex {pattern!r}: {answer[1:]}")
    if answer == "S":
        raise RuntimeError(f"Java regex {pattern!r}: stack overflow")
    return answer == "1"
