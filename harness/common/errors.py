"""The one base of every user error: an exception whose message is written for the user.

The CLI's guard (harness/cli.py) catches ``HarnessError`` only and prints its line; anything else
is a bug and keeps its traceback. Plugins raise it (or a subclass) through ``harness.api``.
This module imports nothing from the harness, so any layer may use it (the plugin system's
``PluginError`` lives here for that reason).
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


class PluginError(HarnessError, RuntimeError):
    """A plugin that cannot be found, loaded or built, or breaks its contract (harness/extend/).

    Here, below the registry and the contracts, so both raise it without importing each other."""


class UnknownOptionError(PluginError, TypeError):
    """An option the plugin's factory does not take (refused before the factory runs)."""


class UnknownPluginError(PluginError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def suggest(name: str, choices: list[str]) -> str | None:
    """The choice closest to a misspelt ``name``, for a message's "did you mean" (None if none is close)."""
    import difflib

    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return close[0] if close else None
