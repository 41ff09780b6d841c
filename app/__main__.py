"""`python -m app`: the embedded run, one process with the process tier and an in-process scheduler."""

from __future__ import annotations

import json
import os
import sys

from werkzeug.serving import WSGIRequestHandler

from config import ConfigError, Settings

from . import create_app
from .curated import CuratedDataError
from .jobs import RefreshJobs
from .logs import configure_logging


class PathOnlyRequestHandler(WSGIRequestHandler):
    """The development server's request handler: an access log without query strings (a token
    could be pasted there), and JSON for the errors it answers itself (a malformed request line)."""

    def log_request(self, code="-", size="-") -> None:
        # A request line that could not be parsed leaves no command or path behind.
        path = (getattr(self, "path", None) or "").split("?", 1)[0]
        self.log("info", '"%s %s" %s %s', getattr(self, "command", None) or "-", path or "-", code, size)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors raised below Flask, in the error envelope the API uses everywhere else."""
        short = self.responses.get(code, ("Error", ""))[0]
        body = json.dumps(
            {"success": False, "error": {"code": short.lower().replace(" ", "_"), "message": message or short}}
        ).encode()
        self.log_error("code %d, message %s", code, message)
        if self.request_version == "HTTP/0.9":
            # Left so by an unparsable request line; a 0.9 answer would carry no status line.
            self.request_version = "HTTP/1.0"
        self.send_response(code, message)
        self.send_header("Connection", "close")
        self.close_connection = True
        has_body = code >= 200 and code not in (204, 304) and getattr(self, "command", None) != "HEAD"
        if has_body:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if has_body:
            self.wfile.write(body)


def main() -> int:
    """Start the scheduler (when enabled) and serve on HOST:PORT (default 127.0.0.1:8000)."""
    # This entry point is the development run unless told otherwise.
    environ = {"APP_ENV": "development", **os.environ}
    try:
        settings = Settings.from_env(environ)
        configure_logging(settings)
        app = create_app(settings)
    except (ConfigError, CuratedDataError) as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    if settings.runs_scheduler(embedded=True):
        RefreshJobs(app.extensions["catalog_service"].refresher).start()
    app.run(
        host=settings.host or "127.0.0.1",
        port=settings.port,
        threaded=True,
        use_reloader=False,
        request_handler=PathOnlyRequestHandler,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
