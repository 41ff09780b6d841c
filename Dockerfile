# The catalog service image: the API (gunicorn) and the refresher (flask models scheduler).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /srv/catalog
COPY requirements.txt .
# Every pinned dependency ships a wheel: no compiler is needed, so none is installed.
RUN pip install -r requirements.txt

COPY config.py wsgi.py ./
COPY app ./app
COPY curated ./curated

RUN useradd --system --uid 10001 --no-create-home catalog
USER catalog

ENV PORT=8000
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4", "--access-logfile", "-", "wsgi:app"]
