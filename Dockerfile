# Production image: gunicorn for web, the same image runs the Celery worker and beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --create-home --uid 1000 app

COPY pyproject.toml README.md ./
RUN pip install .

COPY . .
# collectstatic needs settings to import; a throwaway random key (the settings refuse any
# published one) that lives only for this command and never reaches the image or runtime.
RUN key="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    && DEBUG=0 SECRET_KEY="$key" SALT_KEY="$key" STATIC_MANIFEST=1 python manage.py collectstatic --noinput \
    && chown -R app:app /app

USER app
# Prometheus's multiprocess mode (gunicorn's workers, the Celery worker and beat sum their
# counters in /metrics): set after collectstatic, so that no build step writes there as
# root. compose.yaml mounts a volume shared by its services here; docs/operations.md.
ENV PROMETHEUS_MULTIPROC_DIR=/tmp/mlaccounts-metrics
EXPOSE 8000
# Limits, workers (WEB_CONCURRENCY) and an access log without query strings: gunicorn.conf.py.
CMD ["gunicorn", "--config", "gunicorn.conf.py"]
