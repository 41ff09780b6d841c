"""The model catalog service: an app factory that wires each part through its init_app."""

from __future__ import annotations

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from config import Settings

from . import api, auth, cli, cors, errors, metrics, ops, service


class EnvelopeJSONProvider(DefaultJSONProvider):
    """Flask's JSON with keys in the order written: "success" first, as the spec shows it."""

    sort_keys = False


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from `settings` (default: the environment); connects to nothing, starts nothing."""
    settings = settings or Settings.from_env()
    app = Flask(__name__, static_folder=None)
    app.config["CATALOG_SETTINGS"] = settings
    app.json = EnvelopeJSONProvider(app)
    errors.init_app(app)
    auth.init_app(app, settings)
    service.init_app(app, settings)
    api.init_app(app)
    app.register_blueprint(ops.bp)
    cors.init_app(app, settings.cors_origins)  # outside the fast path and Flask: both get its headers
    metrics.init_app(app)  # last: its middleware wraps all the others, to count every request
    cli.init_app(app)
    return app
