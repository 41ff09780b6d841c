"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

from app import create_app
from app.logs import configure_logging
from config import Settings

settings = Settings.from_env()
configure_logging(settings)
app = create_app(settings)
