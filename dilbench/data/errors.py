"""Data errors: user-facing, so each message names the file or place and the fix."""

from dilbench.errors import DilbenchError


class DataError(DilbenchError):
    """A data set is corrupt, inconsistent, or asked for in a way it cannot satisfy."""


class DataNotFoundError(DataError):
    """No readable copy of a data set in any of the places searched (and no download)."""
