"""The benchmark's baselines, serving the service's own catalog bytes from a file.

A (`constant_app`): a Flask view returning constant bytes, no auth.
B (`jwt_app`): the same behind flask-jwt-extended's @jwt_required(), as the issue's table measured.
"""

import os

from flask import Flask, Response
from flask_jwt_extended import JWTManager, jwt_required


def _body() -> bytes:
    with open(os.environ["BENCH_BODY_FILE"], "rb") as handle:
        return handle.read()


def _constant_app() -> Flask:
    app = Flask("baseline_a")
    body = _body()

    @app.get("/api/models/openrouter")
    def catalog() -> Response:
        return Response(body, mimetype="application/json")

    return app


def _jwt_app() -> Flask:
    app = Flask("baseline_b")
    app.config["JWT_SECRET_KEY"] = os.environ["JWT_SECRET_KEY"]
    JWTManager(app)
    body = _body()

    @app.get("/api/models/openrouter")
    @jwt_required()
    def catalog() -> Response:
        return Response(body, mimetype="application/json")

    return app


def __getattr__(name: str):
    # Built on first use by gunicorn (`bench.baselines:constant_app`), not at import.
    if name == "constant_app":
        return _constant_app()
    if name == "jwt_app":
        return _jwt_app()
    raise AttributeError(name)
