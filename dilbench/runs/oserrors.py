"""What a file-system failure on a run directory means, as one line with the path and the fix.

Python raises OSError with an errno and a filename; TensorFlow raises its own errors whose text holds
the path and the C library's message. Both become the same sentence, so a full disk, a read-only or a
non-writable directory reads the same wherever it struck.
"""

from __future__ import annotations

import errno
import re
from pathlib import Path

# errno -> (what happened, what to do); {retry} is how to carry on once it is fixed
PROBLEMS = {
    errno.ENOSPC: ("no space left on device", "free space on that file system, then {retry}"),
    errno.EDQUOT: ("disk quota exceeded", "free space or raise the quota, then {retry}"),
    errno.EROFS: ("read-only file system", "remount it read-write or use a writable place, then {retry}"),
    errno.EACCES: ("permission denied", "make it writable for this user (chmod/chown) or use another place, then {retry}"),
    errno.EPERM: ("operation not permitted", "make it writable for this user (chmod/chown) or use another place, then {retry}"),
    errno.EIO: ("input/output error", "check the disk (dmesg), then {retry}"),
    errno.ENOTDIR: ("not a directory", "a file stands where a directory should be: move it away, then {retry}"),
}
_TEXT = {  # the C library's messages, as TensorFlow quotes them
    "No space left on device": errno.ENOSPC, "Disk quota exceeded": errno.EDQUOT, "Read-only file system": errno.EROFS,
    "Permission denied": errno.EACCES, "Operation not permitted": errno.EPERM, "Input/output error": errno.EIO,
}
_TF_PATH = re.compile(r"(\S+?)[;:]?\s+(?:" + "|".join(map(re.escape, _TEXT)) + ")")


def os_failure(err: BaseException) -> tuple[int, str | None] | None:
    """(errno, path or None) when `err` is a file-system failure we can explain, else None."""
    if isinstance(err, OSError) and err.errno in PROBLEMS:
        return err.errno, err.filename if isinstance(err.filename, str) else None
    text = str(err)
    for words, code in _TEXT.items():
        if words in text:
            match = _TF_PATH.search(text)
            return code, match.group(1) if match and "/" in match.group(1) else None
    return None


def describe(err: BaseException, doing: str, where: Path, retry: str) -> str | None:
    """`<problem> <doing> <path>; <fix>`, or None when `err` is not a file-system failure.

    `where` is shown when the error names no path; TensorFlow's temp names are cut to the checkpoint.
    """
    failure = os_failure(err)
    if failure is None:
        return None
    code, path = failure
    problem, fix = PROBLEMS[code]
    shown = re.sub(r"_temp/.*$", "", path) if path else str(where)
    return f"{problem} {doing} {shown}; {fix.format(retry=retry)}"


def is_no_space(err: BaseException) -> bool:
    failure = os_failure(err)
    return failure is not None and failure[0] in (errno.ENOSPC, errno.EDQUOT)
