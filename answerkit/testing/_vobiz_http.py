"""The HTTP plumbing under LocalVobiz: a threaded HTTP/1.1 server that hands every request
to one function and writes back the :class:`Reply` it returns.

http.server rather than Werkzeug because the fault switches need the raw socket: a
"reset" must close the connection without a single byte of answer, and connection
reuse is shown by counting accepted connections.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


class _RequestHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections open between requests, so a pooled client reuses them.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without this the body waits for the
    # client's delayed ACK (about 40 ms per request).
    disable_nagle_algorithm = True
    timeout = 60  # an idle keep-alive connection's thread gives up after this

    def _serve(self) -> None:
        server = cast("ReplyServer", self.server)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {name: value for name, value in self.headers.items()}
        try:
            reply = server.handler(self.command, self.path, headers, body)
        except Exception:  # a bug in the fake must show up as a 500, not a hung client
            logger.exception("LocalVobiz failed on %s %s", self.command, self.path)
            reply = Reply(500, b'{"error": "LocalVobiz internal error"}')
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
