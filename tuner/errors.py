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
