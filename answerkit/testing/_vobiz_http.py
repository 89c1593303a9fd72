"""The HTTP plumbing under LocalVobiz: a threaded HTTP/1.1 server that hands every request
to one function and writes back the :class:`Reply` it returns.

http.server rather than Werkzeug because the fault switches need the raw socket: a
"reset" must close the connection without a single byte of answer, and connection
reuse is shown by counting accepted connections.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from typing import Any, cast

__all__ = ["Handler", "Reply", "ReplyServer"]

logger = logging.getLogger("answerkit.testing")


@dataclass
class Reply:
    """What to answer: status, body and headers; ``drop`` closes without answering.

    ``after`` runs once the answer is written (the platform answers 202 before it
    fetches a transfer URL).
    """

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    after: list[Callable[[], None]] = field(default_factory=list)
    drop: bool = False


Handler = Callable[[str, str, Mapping[str, str], bytes], Reply]
"""``handler(method, target, headers, body) -> Reply``; ``target`` is path plus query."""


#: The largest chunked request body read: LocalVobiz's bodies are a few hundred bytes, and
#: a reader of a body whose length is not announced up front needs a bound.
MAX_BODY = 1 << 20


class BodyError(ValueError):
    """A request body that cannot be read: malformed chunked framing or Content-Length, or
    a chunked body over MAX_BODY."""


def read_chunked(rfile: BufferedIOBase) -> bytes:
    """A ``Transfer-Encoding: chunked`` body (RFC 9112 §7.1), trailers skipped."""
    body = bytearray()
    while True:
        size_line = rfile.readline(1024)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)  # a chunk extension is ignored
        except ValueError:
            raise BodyError(f"malformed chunk size line {size_line[:40]!r}") from None
        if size < 0 or len(body) + size > MAX_BODY:
            raise BodyError(f"the chunked body is over {MAX_BODY} bytes")
        if size == 0:
            break
        body += rfile.read(size)
        if rfile.read(2) != b"\r\n":
            raise BodyError("a chunk does not end with CRLF where its size says")
    while rfile.readline(1024) not in (b"\r\n", b"\n", b""):  # the trailer section
        pass
    return bytes(body)


def read_body(rfile: BufferedIOBase, headers: Mapping[str, str]) -> bytes:
    """The request body: chunked when Transfer-Encoding says so (it wins over any
    Content-Length, RFC 9112 §6.3), else Content-Length bytes, else none."""
    lower = {name.lower(): value for name, value in headers.items()}
    codings = [c.strip().lower() for c in lower.get("transfer-encoding", "").split(",")]
    if codings[-1] == "chunked":
        return read_chunked(rfile)
    try:
        length = int(lower.get("content-length") or 0)
    except ValueError:
        raise BodyError("Content-Length is not a number") from None
    return rfile.read(length) if length > 0 else b""


class _RequestHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections open between requests, so a pooled client reuses them.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without this the body waits for the
    # client's delayed ACK (about 40 ms per request).
    disable_nagle_algorithm = True
    timeout = 60  # an idle keep-alive connection's thread gives up after this

    def _serve(self) -> None:
        server = cast("ReplyServer", self.server)
        headers = {name: value for name, value in self.headers.items()}
        try:
            body = read_body(self.rfile, headers)
        except BodyError as exc:
            # The framing is lost, so the connection cannot carry another request.
            self.close_connection = True
            said = json.dumps({"error": f"unreadable request body: {exc}"}).encode()
            reply = Reply(400, said, {"Content-Type": "application/json"})
        else:
            reply = self._answer(server, headers, body)
        if reply.drop:
            self.close_connection = True
            return
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if reply.body and self.command != "HEAD":
                self.wfile.write(reply.body)
            self.wfile.flush()
        except OSError:
            # The client gave up (e.g. its timeout fired during an injected delay).
            self.close_connection = True
        for task in reply.after:
            task()

    def _answer(self, server: ReplyServer, headers: Mapping[str, str], body: bytes) -> Reply:
        try:
            return server.handler(self.command, self.path, headers, body)
        except Exception:  # a bug in the fake must show up as a 500, not a hung client
            logger.exception("LocalVobiz failed on %s %s", self.command, self.path)
            return Reply(500, b'{"error": "LocalVobiz internal error"}')

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("LocalVobiz: " + format, *args)


class ReplyServer(ThreadingHTTPServer):
    """A threaded HTTP/1.1 server on one port that counts and tracks its connections."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: Handler) -> None:
        super().__init__(address, _RequestHandler)
        self.handler = handler
        self.connections = 0
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        return int(self.server_address[1])

    def start(self) -> None:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, then close every open connection so no thread serves on."""
        self.shutdown()
        self.server_close()
        with self._open_lock:
            sockets = list(self._open)
            self._open.clear()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self.connections += 1
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)
