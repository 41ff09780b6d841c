# The catalog service image: the API (gunicorn, the default command) and the refresher
# (`flask --app wsgi models scheduler`), from one build.

FROM python:3.11-slim AS build
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check -r /tmp/requirements.txt

# The final stage gets the virtualenv only: nothing used to build it is left behind.
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8000
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv/catalog
COPY config.py local_servers.py wsgi.py gunicorn.conf.py openapi.yaml ./
COPY app ./app
COPY curated ./curated
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin catalog
USER catalog
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz\", timeout=2)"]
# gunicorn reads ./gunicorn.conf.py: bind from PORT, workers, access log.
CMD ["gunicorn", "wsgi:app"]
