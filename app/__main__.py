"""`python -m app`: the embedded run, one process with the process tier and an in-process scheduler."""

from __future__ import annotations

import os
import sys

from werkzeug.serving import WSGIRequestHandler

from config import ConfigError, Settings

from . import create_app
from .curated import CuratedDataError
from .logs import configure_logging
from .jobs import RefreshJobs


class PathOnlyRequestHandler(WSGIRequestHandler):
    """The development server's access log, without query strings (a token could be pasted there)."""

    def log_request(self, code="-", size="-") -> None:
        self.log("info", '"%s %s" %s %s', self.command, self.path.split("?", 1)[0], code, size)


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
