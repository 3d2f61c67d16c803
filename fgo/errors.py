"""The one exception the CLI turns into a one-line message and a non-zero exit."""


class FgoError(Exception):
    """A user-facing error: its message is printed as one line, exit status 2."""
