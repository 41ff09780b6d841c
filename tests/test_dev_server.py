"""`python -m app`'s server: what it answers below Flask, and its access log."""

from __future__ import annotations

import json
import socket
import threading

import pytest
from werkzeug.serving import make_server

from app import create_app
from app.__main__ import PathOnlyRequestHandler


@pytest.fixture
def dev_server(settings):
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True, request_handler=PathOnlyRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def raw_request(server, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=5) as connection:
        connection.sendall(data)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(
    ("request_line", "expected"),
    [(b"GARBAGE\r\n\r\n", 400), (b"GET\r\n\r\n", 400), (b"GET /healthz HTTP/9.9\r\n\r\n", 505)],
)
def test_a_malformed_request_line_gets_a_json_error(dev_server, request_line, expected):
    answer = raw_request(dev_server, request_line)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert int(head.split()[1]) == expected
    assert b"Content-Type: application/json" in head
    error = json.loads(body)["error"]
    assert error["code"] and error["message"]


def test_the_access_log_leaves_query_strings_out(dev_server, caplog):
    answer = raw_request(dev_server, b"GET /healthz?token=abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
    logged = "\n".join(record.getMessage() for record in caplog.records if record.name == "werkzeug")
    assert '"GET /healthz" 200' in logged and "token=abc" not in logged
