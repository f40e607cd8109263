"""A text log format a person can follow: the message, then the record's facts as key=value.

The engine, the token refresh and the jobs log their facts with ``extra={...}``
(account id, outcome, duration, ML calls). The JSON formatter (LOG_FORMAT=json) prints
them as fields; this formatter, the default, appends them to the line:

    10:00:00,123 INFO sync.engine sync success account_id=… outcome=success duration_ms=212 ml_calls=4
"""

from __future__ import annotations

import logging

# Every attribute a plain LogRecord has; anything else on a record came from `extra`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# Celery repeats the message's own arguments as `extra={"data": ...}`: already in the text.
_SKIP = _STANDARD | {"data"}


class KeyValueFormatter(logging.Formatter):
    """logging.Formatter that appends the record's `extra` facts as ``key=value`` pairs."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        facts = [
            f"{key}={value}"
            for key, value in record.__dict__.items()
            if key not in _SKIP and not key.startswith("_") and value is not None
        ]
        if not facts:
            return line
        head, newline, rest = line.partition("\n")  # keep a traceback below the facts
        return f"{head} {' '.join(facts)}{newline}{rest}"


def logging_config(*, level: str, log_format: str) -> dict:
    """settings.LOGGING: one console handler, this formatter (or JSON with LOG_FORMAT=json)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            # The message, then the facts logged with extra={...} as key=value (sync/logging.py).
            "text": {
                "()": "sync.logging.KeyValueFormatter",
                "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            },
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            },
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json" if log_format == "json" else "text",
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # urllib3 logs full URLs at DEBUG; keep it quiet so nothing sensitive leaks.
            "urllib3": {"level": "WARNING"},
            # One line per sync is sync.engine's (account, outcome, duration, ML calls); Celery's
            # own "received" and "succeeded" lines per task would triple the log. Failures and
            # retries still show (logged at WARNING and above, and by sync.tasks).
            "celery.worker.strategy": {"level": "WARNING"},
            "celery.app.trace": {"level": "WARNING"},
        },
    }
