"""Errors a user can act on: the CLI shows their message as one line, without traceback."""


class DilbenchError(Exception):
    """A user-facing error: its message is shown as one line, without traceback."""

    exit_code = 1


class UsageError(DilbenchError):
    """Bad command-line or config input: nothing ran (exit code 2)."""

    exit_code = 2
