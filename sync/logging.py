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
