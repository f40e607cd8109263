"""Input checks shared by the account and user services; they collect errors per field."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import MAX_SYNC_INTERVAL, MIN_SYNC_INTERVAL, AccountType

MAX_ML_USER_ID = 2**63 - 1
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
    # ML user ids exceed 32 bits and arrive as numbers or strings; accept digits only.
    if isinstance(value, bool):
        value = None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or not 0 < value <= MAX_ML_USER_ID:
        errors.setdefault("ml_user_id", []).append(_("Must be a positive whole number (digits only)."))
        return None
    return value


def check_expiry(errors, value):
    if not isinstance(value, datetime) or timezone.is_naive(value):
        errors.setdefault("token_expires_at", []).append(_("Must be a date and time with a time zone."))
