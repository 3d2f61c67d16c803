"""The one exception the CLI turns into a one-line message and a non-zero exit."""


class FgoError(Exception):
    """A user-facing error: fgo.cli prints `PREFIX: MESSAGE` as one line on stderr and
    exits with CODE.

    The default prefix is "fgo: error" and the default code 2 (bad input, a failed
    build); a verb with its own documented exit statuses speaks as itself, e.g.
    FgoError(msg, prefix="fgo verify") or FgoError(msg, code=1, prefix="fgo toolchain").
    """

    def __init__(self, message: str, *, code: int = 2, prefix: str = "fgo: error") -> None:
        super().__init__(message)
        self.code = code
        self.prefix = prefix

    def line(self) -> str:
        return f"{self.prefix}: {self}"
