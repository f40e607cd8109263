"""Input checks shared by the account and user services; they collect errors per field."""

from __future__ import annotations

import re
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import MAX_SYNC_INTERVAL, MIN_SYNC_INTERVAL, AccountType

# ML user ids exceed 32 bits (today about 10 digits); 18 digits fit the BIGINT column and a
# pattern the API schema can state exactly.
ML_USER_ID_MAX_DIGITS = 18
MAX_ML_USER_ID = 10**ML_USER_ID_MAX_DIGITS - 1
ML_USER_ID_PATTERN = rf"^[1-9][0-9]{{0,{ML_USER_ID_MAX_DIGITS - 1}}}$"
ML_USER_ID_RE = re.compile(ML_USER_ID_PATTERN, re.ASCII)
# Mercado Livre site ids: MLB, MLA, MCO, … (ASCII letters, stored upper-case).
SITE_ID_PATTERN = r"^[A-Za-z]{2,4}$"
SITE_ID_RE = re.compile(SITE_ID_PATTERN, re.ASCII)
MAX_TEXT = 255
MAX_TOKEN_LENGTH = 2000


def check_text(errors, field, value, *, required=True, max_length=MAX_TEXT):
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.setdefault(field, []).append(_("This field is required."))
        return
    if not isinstance(value, str):
        errors.setdefault(field, []).append(_("Must be text."))
    elif len(value) > max_length:
        errors.setdefault(field, []).append(
            _("Ensure this value has at most %(max)d characters.") % {"max": max_length}
        )


def check_interval(errors, value):
    if isinstance(value, bool) or not isinstance(value, int):
        errors.setdefault("sync_interval", []).append(_("Must be a whole number of seconds."))
    elif not MIN_SYNC_INTERVAL <= value <= MAX_SYNC_INTERVAL:
        errors.setdefault("sync_interval", []).append(
            _("Must be between %(min)d seconds and %(max)d seconds.")
            % {"min": MIN_SYNC_INTERVAL, "max": MAX_SYNC_INTERVAL}
        )


def check_account_type(errors, value):
    if value not in AccountType.values:
        errors.setdefault("account_type", []).append(
            _("Must be one of: %(choices)s.") % {"choices": ", ".join(AccountType.values)}
        )


def parse_ml_user_id(errors, value):
    """An ML user id from a JSON integer or a string of ASCII digits; None (and an error) otherwise.

    str.isdigit() would take "²", "①" or "１２３" (and int() then fails on the first two):
    only ASCII digits, no leading zero, at most ML_USER_ID_MAX_DIGITS of them, so the
    check happens before any conversion of a huge string.
    """
    if isinstance(value, bool):
        value = None
    if isinstance(value, str) and ML_USER_ID_RE.fullmatch(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int) or not 0 < value <= MAX_ML_USER_ID:
        errors.setdefault("ml_user_id", []).append(_("Must be a positive whole number (digits only)."))
        return None
    return value


def check_site_id(errors, value):
    if not isinstance(value, str) or not SITE_ID_RE.fullmatch(value):
        errors.setdefault("site_id", []).append(_("Must be a Mercado Livre site id such as MLB."))


def check_expiry(errors, value):
    if not isinstance(value, datetime) or timezone.is_naive(value):
        errors.setdefault("token_expires_at", []).append(_("Must be a date and time with a time zone."))
