"""A loopback HTTP server standing in for OpenRouter and Ollama, with fault modes.

Modes of a route: ok; hang (headers never come); trickle (the body one byte every
`trickle_seconds`); endless (a body that never ends); reset (half the body, then a TCP reset).
Status codes, headers and bodies (HTML, wrong shapes, gzip bombs, redirects) are set per route,
and a route's answer can be held back until the test sets an event (`hold`).
"""

from __future__ import annotations

import dataclasses
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# The recorded upstream answers the tests replay (the benchmark replays them too).
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def fixture_bytes(relative: str) -> bytes:
    """The bytes of a recorded fixture, e.g. "ollama/tags_1.json"."""
    return (FIXTURES / relative).read_bytes()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        # Clients that hang up mid-answer (deadlines, byte caps) are what the tests provoke.
        pass


@dataclasses.dataclass
class Route:
    """What the server answers on one method and path."""

    body: bytes = b"{}"
    status: int = 200
    headers: dict = dataclasses.field(default_factory=lambda: {"Content-Type": "application/json"})
    mode: str = "ok"  # ok | hang | trickle | endless | reset
    delay: float = 0.0
    trickle_seconds: float = 0.5
    hold: threading.Event | None = None  # when set: answer only once the test sets it


@dataclasses.dataclass
class Call:
    method: str
    path: str
    headers: dict
    body: bytes
    at: float = dataclasses.field(default_factory=time.monotonic)


class FakeUpstream:
    """Routes set by the test; every request is recorded in `calls`."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.show_routes: dict[str, Route] = {}
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def set(self, path: str, body: bytes = b"{}", method: str = "GET", **options) -> None:
        self.routes[(method, path)] = Route(body=body, **options)

    def set_show(self, model: str, body: bytes, **options) -> None:
        """Answer POST /api/show for one model name."""
        self.show_routes[model] = Route(body=body, **options)

    def count(self, path: str) -> int:
        return len(self.times(path))

    def times(self, path: str) -> list[float]:
        """When each call to `path` arrived (monotonic seconds)."""
        with self._lock:
            return [call.at for call in self.calls if call.path == path]

    def _handler_class(self):
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _route(self, method: str) -> Route:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with upstream._lock:
                    upstream.calls.append(Call(method, self.path, dict(self.headers), body))
                route = upstream.routes.get((method, self.path))
                if method == "POST" and self.path == "/api/show":
                    name = json.loads(body or b"{}").get("model", "")
                    route = upstream.show_routes.get(name, route)
                return route or Route(body=b'{"error":"not found"}', status=404)

            def _answer(self, method: str) -> None:
                route = self._route(method)
                if route.hold is not None:
                    while not route.hold.wait(0.05) and not upstream._release.is_set():
                        pass
                if route.delay:
                    upstream._release.wait(route.delay)
                if route.mode == "hang":
                    upstream._release.wait(120)
                    return
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                if route.mode == "endless":
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self._send_endless(route.body or b"x")
                    return
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                if route.mode == "trickle":
                    self._send_trickle(route)
                elif route.mode == "reset":
                    self.wfile.write(route.body[: len(route.body) // 2])
                    self.wfile.flush()
                    # SO_LINGER with a zero timeout makes close() send a RST.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                else:
                    self.wfile.write(route.body)

            def _send_trickle(self, route: Route) -> None:
                for byte in route.body:
                    if upstream._release.wait(route.trickle_seconds):
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()

            def _send_endless(self, piece: bytes) -> None:
                chunk = piece * max(1, 65536 // len(piece))
                while not upstream._release.is_set():
                    self.wfile.write(chunk)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

        return Handler


class UnacceptingPort:
    """A port whose listen backlog is full: a new connection's SYN goes unanswered, so the
    client's connect times out (on loopback, without sending anything anywhere else)."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.port = self._listener.getsockname()[1]
        self._fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", self.port))
            self._fillers.append(filler)
        time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        for sock in self._fillers:
            sock.close()
        self._listener.close()
