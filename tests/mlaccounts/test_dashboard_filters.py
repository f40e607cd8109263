"""The dashboard's template filters: numbers, relative times and intervals, per language."""

from datetime import timedelta

import pytest
from django.utils import timezone, translation

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
    assert dashboard.site_name("MLB") == "Brasil" and dashboard.site_name("XYZ") == "XYZ"
