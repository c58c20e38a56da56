"""User-facing errors.

Anything a user can fix (a bad config value, a missing file, a malformed record) raises `PLWError`
with a one-line message naming the file, line or field. The CLI prints the message and exits 2;
library callers catch it like any exception.
"""


class PLWError(Exception):
    """A user-facing error: printed as one line, exit code 2."""
