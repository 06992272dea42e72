"""Error messages shared across the CLI, the registry and the configuration."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def unknown_name_error(kind: str, name: str, choices: Iterable[str]) -> KeyError:
    """Build the error for an unknown registry name, listing the choices and the closest one.

    Returns a `KeyError` subclass whose `str()` is the readable message.
    """
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return UnknownNameError(
        f"unknown {kind} {name!r}.{hint} Valid choices: {', '.join(choices)}."
    )


class UnknownNameError(KeyError):
    """A name that is not registered; `str()` gives the message without KeyError's quotes."""

    def __str__(self) -> str:
        return str(self.args[0])
