"""The two kinds of failure the tool distinguishes.

A ``UsageError`` is the user's to fix (bad flag, missing data, a study with
another configuration): the CLI prints its one-line message and exits 2,
before anything is written. A ``TrialError`` belongs to one trial: it is
recorded on that trial as FAIL and the search goes on.
"""


class DepthTunerError(Exception):
    """Base of every error the tool raises on purpose."""


class UsageError(DepthTunerError):
    """Input the user must change; the message says what to change."""


class TrialError(DepthTunerError):
    """One trial could not produce metrics (NaN loss, out of memory, ...)."""


class OutOfMemory(TrialError):
    """The device ran out of memory: the trial fails, and its process is replaced before the next
    one (TensorFlow does not give back what it holds after an out-of-memory error)."""


class SearchStopped(DepthTunerError):
    """The failure policy ended the search; the study is intact and resumable."""


class ConsecutiveFailures(DepthTunerError):
    """``--max-consecutive-failures`` trials in a row failed: likely a broken setup, not a bad depth."""

    def __init__(self, count: int):
        super().__init__(f"{count} failed trials in a row")
        self.count = count


def one_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception from a library, for our own messages."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    line = lines[0]
    if len(line) > limit:  # cut at a word, and say so
        line = line[:limit].rsplit(" ", 1)[0].rstrip(" ,;:(") + " ..."
    return line
