"""Exceptions for bad input. Each carries the path it concerns and a reason a person can act on."""

from __future__ import annotations

from pathlib import Path


class CxrError(Exception):
    """Base of the errors that are the user's input, not a bug: the CLI prints them without a traceback."""


class InputError(CxrError):
    """A file or folder cxr cannot use, with the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UnreadableImage(InputError):
    """An image file that cannot be turned into pixels cxr trusts."""


def require_option(value: object, option: str) -> None:
    """Raises a CxrError naming `option` when a required option was not given.

    CLI functions type such options `X | None = None` so that they are options (`--model`,
    `-o`) rather than positional arguments.
    """
    if value is None:
        raise CxrError(f"{option} is required")
