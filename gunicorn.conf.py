"""gunicorn's settings for ML Accounts in production: `gunicorn --config gunicorn.conf.py`.

The Dockerfile's CMD and compose's web service use this file; it is plain Python that
gunicorn loads, never imported by Django. Every limit is set here on purpose rather than
left to gunicorn's defaults, because the app's own deadlines are measured against them.
"""

import os

from gunicorn import glogging


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise SystemExit(f"{name} must be at least 1, got {value}")
    return value


wsgi_app = "mlaccounts.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")

# Synchronous workers: one request at a time each. WEB_CONCURRENCY is the variable
# gunicorn and most platforms already use for it; about 2 per core on this I/O-bound app.
workers = _env_int("WEB_CONCURRENCY", 3)

# A request still running after this many seconds is killed (an HTML 500 to the client).
# Every synchronous Mercado Livre path answers within its own overall deadline before it:
# SYNC_REQUEST_DEADLINE (20 s) for one sync or refresh, SYNC_ALL_TIMEOUT (20 s) for
# "sync all". Raise those only together with this (tests/test_gunicorn_conf.py checks it).
timeout = 30
# On a restart or deploy, running requests get as long as the timeout to finish.
graceful_timeout = 30
# Idle keep-alive connections behind a proxy: short, a sync worker is blocked meanwhile.
keepalive = 5

# To stdout and stderr, collected by the container runtime.
accesslog = "-"
errorlog = "-"
# The path without its query string (%(U)s), never the request line (%(r)s), the query
# (%(q)s) or the Referer (%(f)s): Mercado Livre's OAuth redirect brings `code` and `state`
# in the query of /ml-accounts/connect/callback/, and neither may reach a log.
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms "%(a)s"'

# The notifications callback's path holds its only credential, ML_WEBHOOK_SECRET (ML signs
# nothing), and a reconnect link's path its token: the access log shows those paths with
# that segment masked.
WEBHOOK_PREFIX = "/webhooks/mercadolivre/"
RECONNECT_PREFIX = "/reconnect/"
SECRET_PREFIXES = (WEBHOOK_PREFIX, RECONNECT_PREFIX)


class AccessLogger(glogging.Logger):
    """gunicorn's logger, with the webhook secret and reconnect tokens masked in the path."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        path = str(atoms.get("U", ""))
        for prefix in SECRET_PREFIXES:
            if path.startswith(prefix):
                atoms["U"] = prefix + "***/"
        return atoms


logger_class = AccessLogger


def child_exit(server, worker):
    """A worker exited: with PROMETHEUS_MULTIPROC_DIR, drop its live gauges' files (its
    counters stay in the sums /metrics shows). The directory is emptied only before every
    process that writes there starts (make run, the bench, compose's tmpfs volume): see
    docs/operations.md, "Metrics"."""
    from mlaccounts import prometheus

    prometheus.mark_process_dead(worker.pid)
