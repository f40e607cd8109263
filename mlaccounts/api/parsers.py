"""The API's only parser: JSON, bounded in size, and never a 500 on hostile input."""

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

from mlaccounts.api.errors import RequestTooLarge


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with a body limit and without its unhandled corner cases.

    DRF streams the body straight into ``json.load``, so Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE never applies to it: enforce that limit here (413).
    Nesting deep enough to exhaust the recursion limit raises RecursionError, not
    ValueError, in ``json``: a 400, not a 500.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            # Only text codecs: a bytes-to-bytes one (bz2_codec…) would decompress the body.
            "".encode(encoding)
        except (LookupError, UnicodeError):
            raise ParseError(f"Unsupported charset {encoding!r} in the Content-Type header.") from None
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(raw) > limit:
            raise RequestTooLarge()
        try:
            return json.loads(raw.decode(encoding), parse_constant=json.strict_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error: {str(exc)[:200]}") from None
        except RecursionError:
            raise ParseError("JSON parse error: nested too deeply.") from None
