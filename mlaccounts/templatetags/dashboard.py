"""Template filters for the dashboard: counts, relative times and words for errors."""

from datetime import datetime

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.mercadolivre import oauth
from accounts.models import Role
from sync import ondemand, outcomes

register = template.Library()

SITE_NAMES = dict(oauth.SITES)
# timesince() counts whole minutes: anything closer than one would read "0 minutes".
UNDER_A_MINUTE = 60


@register.filter
def count(value) -> str:
    """A localised whole number (12.640 in pt-BR), or a dash while it is not known."""
    if value is None:
        return "—"
    return intcomma(value)


@register.filter
def relative(value: datetime | None) -> str:
    """How long ago or how far ahead, in words: "há 3 minutos", "em 2 horas", "agora mesmo"."""
    if value is None:
        return ""
    now = timezone.now()
    seconds = (value - now).total_seconds()
    if -UNDER_A_MINUTE < seconds <= 0:
        return _("just now")
    if 0 < seconds < UNDER_A_MINUTE:
        return _("in less than a minute")
    if seconds < 0:
        return _("%(time)s ago") % {"time": timesince(value, now, depth=1)}
    return _("in %(time)s") % {"time": timeuntil(value, now, depth=1)}


@register.filter
def next_sync(value: datetime | None) -> str:
    """When the next scheduled sync runs; "due now" once its time has come."""
    if value is None:
        return ""
    if value <= timezone.now():
        return _("due now")
    return relative(value)


TIMETAG_KINDS = {"": relative, "next": next_sync}


@register.simple_tag
def timetag(value: datetime | None, kind: str = "") -> str:
    """A moment as a <time> element: the relative words as its text, the absolute local date
    and time (SHORT_DATETIME_FORMAT: "01/12/2026 17:12", in English "1 Dec 2026, 17:12") as
    its tooltip, and the ISO form in `datetime`. Nothing for None.

        {% load dashboard %}
        {% timetag account.last_sync %}          → <time datetime="2026-12-01T17:12:00-03:00"
                                                     title="01/12/2026 17:12">há 3 minutos</time>
        {% timetag account.next_sync kind="next" %}   "due now" (next_sync) once it has come
        {% timetag invitation.expires_at as when %}   stored, for {% blocktranslate %}…{{ when }}

    Both texts are escaped (format_html); a wrapper adds "Last sync:" and the like itself.
    `data-relative` ("past" or "next") lets app.js keep the words current in the overview's
    live list without asking the server again.
    """
    if value is None:
        return ""
    if kind not in TIMETAG_KINDS:
        raise ValueError(f"timetag: unknown kind {kind!r} (expected one of {sorted(TIMETAG_KINDS)})")
    local = timezone.localtime(value)
    return format_html(
        '<time datetime="{}" title="{}" data-relative="{}">{}</time>',
        local.isoformat(timespec="seconds"),
        date_format(local, "SHORT_DATETIME_FORMAT"),
        kind or "past",
        TIMETAG_KINDS[kind](value),
    )


@register.filter
def duration(seconds: int | None) -> str:
    """A sync interval in words: "5 minutos", "90 segundos", "2 horas"."""
    if seconds is None:
        return ""
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return ngettext("%(count)d hour", "%(count)d hours", hours) % {"count": hours}
    if seconds % 60 == 0:
        minutes = seconds // 60
        return ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}
    return ngettext("%(count)d second", "%(count)d seconds", seconds) % {"count": seconds}


@register.filter
def expiry(health) -> str:
    """The token's time left in words: "expira em 5 horas, 58 minutos" or "expirou há 2 dias"."""
    if health.expires_at is None:
        return _("no expiry date stored")
    now = timezone.now()
    seconds = (health.expires_at - now).total_seconds()
    if health.is_expired:
        if seconds > 0:
            # Expired before its clock ran out: Mercado Livre refused the grant (token_health).
            return _("refused by Mercado Livre")
        if seconds > -UNDER_A_MINUTE:
            return _("expired just now")
        return _("expired %(time)s ago") % {"time": timesince(health.expires_at, now, depth=1)}
    if seconds < UNDER_A_MINUTE:
        return _("expires in less than a minute")
    return _("expires in %(time)s") % {"time": timeuntil(health.expires_at, now)}


@register.filter
def site_name(site_id: str) -> str:
    """The country of a Mercado Livre site id, in the reader's language (MLB → Brasil, Brazil)."""
    return str(SITE_NAMES.get(site_id, site_id))


@register.filter
def sync_problem(kind: str | None) -> str:
    """What went wrong with a failed sync, in words a seller understands (sync.outcomes)."""
    return outcomes.problem(kind)


@register.filter
def sync_phase(account) -> str:
    """ "interrupted", "syncing", "queued" or "" for the account's row (sync.ondemand)."""
    return ondemand.sync_phase(account)


@register.filter
def role_name(role: str | None) -> str:
    """A workspace role in the reader's language (owner → Proprietário)."""
    return Role(role).label if role in Role.values else ""
