"""go's GOCACHEPROG protocol (cmd/go/internal/cacheprog), framed exactly as cmd/go does.

go writes each JSON Request followed by an empty line (json.Encoder's newline, then its
own); a "put" with BodySize > 0 is followed by a line holding the body as a base64 JSON
string. The helper first writes a Response with ID 0 and its
KnownCommands, then one Response per Request, in any order. []byte fields travel as
base64 (encoding/json's convention).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, Any, Callable

COMMANDS = ("get", "put", "close")


class ProtocolError(Exception):
    """go sent something that is not a Request."""


@dataclass
class Request:
    id: int
    command: str
    action_id: bytes = b""
    output_id: bytes = b""
    body: bytes = b""
    reused: bool = False   # a put whose body the helper already holds: its line not decoded


@dataclass
class Response:
    id: int
    err: str = ""
    known_commands: tuple[str, ...] = ()
    miss: bool = False
    output_id: bytes = b""
    size: int = 0
    time: float | None = None      # epoch seconds the entry was put
    disk_path: str = ""

    def to_json(self) -> dict[str, Any]:
        """The fields go reads, omitting the empty ones as go's `omitempty` does."""
        out: dict[str, Any] = {"ID": self.id}
        if self.err:
            out["Err"] = self.err
        if self.known_commands:
            out["KnownCommands"] = list(self.known_commands)
        if self.miss:
            out["Miss"] = True
        if self.output_id:
            out["OutputID"] = base64.b64encode(self.output_id).decode()
        if self.size:
            out["Size"] = self.size
        if self.time is not None:
            out["Time"] = datetime.fromtimestamp(self.time, timezone.utc).isoformat()
        if self.disk_path:
            out["DiskPath"] = self.disk_path
        return out


def _bytes(value: Any) -> bytes:
    return base64.b64decode(value) if value else b""


def _next_line(stream: IO[bytes]) -> bytes:
    """The next non-empty line, or b"" at the end of input."""
    line = stream.readline()
    while line and not line.strip():
        line = stream.readline()
    return line


def _body_line(stream: IO[bytes], size: int) -> bytes:
    """A put's body line (blank lines before it skipped), read by the length go writes it
    at, '"' + base64 + '"\n' (cmd/go/internal/cache/prog.go): readline on lines of
    megabytes cost three times as much. A line longer than that is read on to its end."""
    peek = getattr(stream, "peek", None)
    if peek is None:
        return _next_line(stream)
    while (c := peek(1)[:1]) and not c.strip():
        stream.read(1)
    line = stream.read(4 * ((size + 2) // 3) + 3)
    if line and not line.endswith(b"\n"):
        line += stream.readline()
    return line


def _body(line: bytes) -> bytes:
    """A body line: a JSON string of base64, which needs no JSON decoding when it holds no
    escape (encoding/json escapes none of base64's characters). Parsing them as JSON was
    two fifths of fgo cacheprog's CPU (etcd's 1452 puts, 259 MB: 4.7 s, 2.7 s without)."""
    line = line.strip()
    if len(line) >= 2 and line[:1] == b'"' and line[-1:] == b'"' and b"\\" not in line:
        return binascii.a2b_base64(memoryview(line)[1:-1])
    return base64.b64decode(json.loads(line))


def _skippable(line: bytes, size: int) -> bool:
    """LINE is a plain base64 JSON string of SIZE bytes, judged by its length alone."""
    line = line.rstrip(b"\r\n")
    return len(line) == 4 * ((size + 2) // 3) + 2 and line[:1] == b'"' and line[-1:] == b'"'


def read_request(stream: IO[bytes],
                 known: Callable[[bytes, bytes, int], bool | bytes] | None = None
                 ) -> Request | None:
    """The next Request from STREAM (its body read too), or None at the end of input.

    KNOWN(action, output, size) says whether the helper already holds that put's body (the
    same action and output ID: go's output ID is the sha256 of the body): its line is then
    read but neither decoded nor hashed (`reused`), as long as its length is right; or it
    gives the body itself, found elsewhere and checked against the output ID (the file go
    just put from), which saves decoding the line (the cacheprog's largest cost)."""
    line = _next_line(stream)
    if not line:
        return None
    try:
        msg = json.loads(line)
        req = Request(int(msg["ID"]), str(msg["Command"]), _bytes(msg.get("ActionID")),
                      _bytes(msg.get("OutputID")))
        size = int(msg.get("BodySize") or 0)
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError(f"bad request line: {exc}") from None
    if size > 0:
        body_line = _body_line(stream, size)
        if known is not None and req.command == "put" and req.action_id and req.output_id \
                and _skippable(body_line, size):
            found = known(req.action_id, req.output_id, size)
            if found is True:
                req.reused = True
                return req
            if isinstance(found, bytes) and len(found) == size:
                req.body = found
                return req
        try:
            req.body = _body(body_line)
        except (ValueError, TypeError) as exc:
            raise ProtocolError(f"bad body of request {req.id}: {exc}") from None
        if len(req.body) != size:
            raise ProtocolError(f"request {req.id}: body of {len(req.body)} bytes, "
                                f"BodySize {size}")
    return req


def encode_response(resp: Response) -> bytes:
    return json.dumps(resp.to_json(), separators=(",", ":")).encode() + b"\n"


def encode_request(req: Request) -> bytes:
    """A Request as go writes it (for tests and tools that play go's side)."""
    msg: dict[str, Any] = {"ID": req.id, "Command": req.command}
    if req.action_id:
        msg["ActionID"] = base64.b64encode(req.action_id).decode()
    if req.output_id:
        msg["OutputID"] = base64.b64encode(req.output_id).decode()
    if req.body:
        msg["BodySize"] = len(req.body)
    out = json.dumps(msg).encode() + b"\n\n"
    if req.body:
        out += b'"' + base64.b64encode(req.body) + b'"\n'
    return out


def decode_response(line: bytes) -> Response:
    """A Response line (for tests and tools that play go's side)."""
    msg = json.loads(line)
    when = msg.get("Time")
    return Response(int(msg["ID"]), msg.get("Err", ""), tuple(msg.get("KnownCommands", ())),
                    bool(msg.get("Miss")), _bytes(msg.get("OutputID")), int(msg.get("Size", 0)),
                    datetime.fromisoformat(when).timestamp() if when else None,
                    msg.get("DiskPath", ""))
