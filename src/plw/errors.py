"""User-facing errors.

Anything a user can fix (a bad config value, a missing file, a malformed record) raises `PLWError`
with a one-line message naming the file, line or field. The CLI prints the message and exits 2;
library callers catch it like any exception.
"""


class PLWError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


class WriteError(PLWError):
    """A file or directory could not be written: `<path>: cannot write: <reason>`.

    Attributes:
        path: what could not be written.
        disk_full: the filesystem (or the user's quota) is full. A sweep stops on such an error
            instead of failing every remaining cell the same way.
    """

    def __init__(self, path, reason: str, *, disk_full: bool = False):
        super().__init__(f"{path}: cannot write: {reason}")
        self.path, self.disk_full = path, disk_full
