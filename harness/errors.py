"""The one base of every user error: an exception whose message is written for the user.

The CLI's guard (harness/cli.py) catches ``HarnessError`` only and prints its line; anything else
is a bug and keeps its traceback. Plugins raise it (or a subclass) through ``harness.api``.
This module imports nothing from the harness, so any layer may use it.
"""

from __future__ import annotations


class HarnessError(Exception):
    """A user error: one line saying what was wrong and what to do, and the exit code to leave with."""

    #: the CLI's exit status for this error (2: bad input, the team's rule)
    exit_code: int = 2

    @property
    def line(self) -> str:
        """The message the CLI prints after ``error:`` (the message as raised)."""
        return str(self)
