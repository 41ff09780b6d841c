"""A loopback HTTP server standing in for OpenRouter and Ollama, serving recorded answers."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


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
    mode: str = "ok"  # ok | hang | trickle
    delay: float = 0.0


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

            def _answer(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with upstream._lock:
                    upstream.calls.append(Call(method, self.path, dict(self.headers), body))
                route = upstream.routes.get((method, self.path))
                if method == "POST" and self.path == "/api/show":
                    name = json.loads(body or b"{}").get("model", "")
                    route = upstream.show_routes.get(name, route)
                if route is None:
                    route = Route(body=b'{"error":"not found"}', status=404)
                if route.delay:
                    time.sleep(route.delay)
                if route.mode == "hang":
                    upstream._release.wait(60)
                    return
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                if route.mode == "trickle":
                    for byte in route.body:
                        if upstream._release.is_set():
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(0.2)
                    return
                self.wfile.write(route.body)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

        return Handler
