"""The dashboard's template filters: numbers, relative times and intervals, per language."""

from datetime import UTC, datetime, timedelta

import pytest
from django.template import Context, Template
from django.utils import timezone, translation
from django.utils.formats import date_format

from accounts.tokens import TokenHealth
from mlaccounts.templatetags import dashboard


@pytest.mark.parametrize(
    ("language", "number", "text"),
    [("pt-br", 12640, "12.640"), ("en", 12640, "12,640"), ("pt-br", None, "—")],
)
def test_count_is_localised(language, number, text):
    with translation.override(language):
        assert dashboard.count(number) == text


def test_relative_times_in_portuguese_english_and_spanish():
    now = timezone.now()
    cases = {
        "pt-br": ("há 3\xa0minutos", "em 2\xa0horas", "agora mesmo"),
        "en": ("3\xa0minutes ago", "in 2\xa0hours", "just now"),
        "es": ("hace 3\xa0minutos", "en 2\xa0horas", "ahora mismo"),
    }
    for language, (past, future, just_now) in cases.items():
        with translation.override(language):
            assert dashboard.relative(now - timedelta(minutes=3, seconds=5)) == past
            assert dashboard.relative(now + timedelta(hours=2, minutes=1)) == future
            assert dashboard.relative(now - timedelta(seconds=10)) == just_now
            assert dashboard.relative(None) == ""


def test_next_sync_in_the_past_is_due_now():
    with translation.override("pt-br"):
        assert dashboard.next_sync(timezone.now() - timedelta(minutes=5)) == "agora"


@pytest.mark.parametrize(
    ("seconds", "text"), [(60, "1 minuto"), (300, "5 minutos"), (90, "90 segundos"), (7200, "2 horas")]
)
def test_interval_in_words(seconds, text):
    with translation.override("pt-br"):
        assert dashboard.duration(seconds) == text


def test_token_expiry_in_words():
    now = timezone.now()
    with translation.override("pt-br"):
        alive = TokenHealth(now + timedelta(hours=5, minutes=30, seconds=20), 19820, 92, False, False)
        assert dashboard.expiry(alive).startswith("expira em 5\xa0horas")
        dead = TokenHealth(now - timedelta(days=2, minutes=1), -172860, 0, True, True)
        assert dashboard.expiry(dead) == "expirou há 2\xa0dias"
        assert dashboard.expiry(TokenHealth(None, None, 0, True, True)) == "sem data de validade guardada"


def test_sync_problems_are_words_not_codes():
    with translation.override("pt-br"):
        assert dashboard.sync_problem("auth") == (
            "O Mercado Livre não aceita mais a autorização desta conta. Reconecte-a."
        )
        assert "não estava respondendo" in dashboard.sync_problem("unavailable")
        assert dashboard.sync_problem(None) == "A última sincronização falhou. A próxima tentará de novo."
        # In the language asked for, not whichever an earlier test's request left active.
        assert dashboard.site_name("MLB") == "Brasil" and dashboard.site_name("XYZ") == "XYZ"


# --- Under a minute: never "0 minutes" (issue 12) -------------------------------------------------

UNDER_A_MINUTE = {
    "pt-br": ("agora mesmo", "em menos de um minuto", "expirou agora mesmo", "expira em menos de um minuto"),
    "en": ("just now", "in less than a minute", "expired just now", "expires in less than a minute"),
    "es": ("ahora mismo", "en menos de un minuto", "venció ahora mismo", "vence en menos de un minuto"),
}


@pytest.mark.parametrize("language", list(UNDER_A_MINUTE))
@pytest.mark.parametrize("seconds", [1, 30, 45, 50, 59])
def test_under_a_minute_away_never_reads_zero_minutes(language, seconds):
    just_now, soon, expired_just_now, expires_soon = UNDER_A_MINUTE[language]
    now = timezone.now()
    with translation.override(language):
        assert dashboard.relative(now - timedelta(seconds=seconds)) == just_now
        assert dashboard.relative(now + timedelta(seconds=seconds)) == soon
        assert dashboard.next_sync(now + timedelta(seconds=seconds)) == soon
        expired = TokenHealth(now - timedelta(seconds=seconds), -seconds, 0, True, True)
        assert dashboard.expiry(expired) == expired_just_now
        alive = TokenHealth(now + timedelta(seconds=seconds), seconds, 1, False, True)
        assert dashboard.expiry(alive) == expires_soon


def test_a_refused_grant_whose_clock_has_time_left_does_not_read_expired_zero_minutes_ago():
    # token_health: status `expired` (ML refused the grant) is expired whatever the clock says.
    refused = TokenHealth(timezone.now() + timedelta(hours=3), 10800, 0, True, True)
    with translation.override("pt-br"):
        assert dashboard.expiry(refused) == "recusado pelo Mercado Livre"


def test_a_minute_and_more_still_reads_in_minutes():
    now = timezone.now()
    with translation.override("en"):
        assert dashboard.relative(now - timedelta(seconds=61)) == "1\xa0minute ago"
        assert dashboard.relative(now + timedelta(seconds=61)) == "in 1\xa0minute"


# --- {% timetag %}: relative words, the absolute time as a tooltip ------------------------------------


def render(source, **context):
    return Template("{% load dashboard %}" + source).render(Context(context))


def test_timetag_shows_the_relative_time_with_the_absolute_one_as_a_tooltip():
    when = timezone.now() - timedelta(minutes=3, seconds=5)
    local = timezone.localtime(when)
    with translation.override("en"):
        html = render("{% timetag when %}", when=when)
    assert html == (
        f'<time datetime="{local.isoformat(timespec="seconds")}" '
        f'title="{local.day} {local:%b %Y, %H:%M}" data-relative="past">3\xa0minutes ago</time>'
    )


def test_timetag_next_says_due_now_once_the_time_has_come():
    with translation.override("pt-br"):
        html = render('{% timetag when kind="next" %}', when=timezone.now() - timedelta(minutes=2))
        assert ">agora</time>" in html
        assert ">há 2\xa0minutos</time>" in render(
            "{% timetag when %}", when=timezone.now() - timedelta(minutes=2)
        )


def test_timetag_of_nothing_is_empty_and_can_be_stored_for_blocktranslate():
    assert render("{% timetag when %}", when=None) == ""
    with translation.override("en"):
        html = render(
            "{% timetag when as ago %}{% load i18n %}"
            "{% blocktranslate %}seen {{ ago }}{% endblocktranslate %}",
            when=timezone.now() - timedelta(hours=2, minutes=1),
        )
    assert html.startswith('seen <time datetime="') and html.endswith(">2\xa0hours ago</time>")


def test_timetag_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        render('{% timetag when kind="nxet" %}', when=timezone.now())


# --- Absolute dates: unambiguous in English, natural in Portuguese and Spanish --------------------------

DECEMBER_FIRST = datetime(2026, 12, 1, 20, 12, tzinfo=UTC)  # 17:12 in São Paulo


@pytest.mark.parametrize(
    ("language", "short"),
    [("en", "1 Dec 2026, 17:12"), ("pt-br", "01/12/2026 17:12"), ("es", "01/12/2026 17:12")],
)
def test_dates_are_unambiguous_in_every_language(language, short):
    local = timezone.localtime(DECEMBER_FIRST)
    with translation.override(language):
        assert date_format(local, "SHORT_DATETIME_FORMAT") == short


def test_english_dates_are_day_month_year_with_a_24_hour_clock():
    local = timezone.localtime(DECEMBER_FIRST)
    with translation.override("en"):
        assert date_format(local, "DATETIME_FORMAT") == "1 Dec 2026, 17:12"
        assert date_format(local, "DATE_FORMAT") == date_format(local, "SHORT_DATE_FORMAT") == "1 Dec 2026"
        assert date_format(local, "TIME_FORMAT") == "17:12"


@pytest.mark.parametrize(
    ("language", "names"),
    [
        ("en", {"MLB": "Brazil", "MLM": "Mexico", "MRD": "Dominican Republic", "MPE": "Peru"}),
        ("pt-br", {"MLB": "Brasil", "MLM": "México", "MCO": "Colômbia", "MLU": "Uruguai"}),
        ("es", {"MLB": "Brasil", "MLM": "México", "MCO": "Colombia", "MPE": "Perú"}),
    ],
)
def test_country_names_are_in_the_readers_language(language, names):
    with translation.override(language):
        assert {site: dashboard.site_name(site) for site in names} == names
