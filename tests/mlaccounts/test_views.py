"""The dashboard's pages and actions: anonymous, outsider, success, validation, htmx partials.

The cast (tests/conftest.py): `user` (alice) owns `ml_account`; `other_user` (charlie) is the
outsider. Mercado Livre is mocked at the HTTP boundary. Pages answer in pt-BR by default, so
messages are checked in Portuguese unless a test switches the language.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest
import responses
from django.contrib.messages import get_messages
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from accounts.errors import AccountValidationError
from accounts.models import AccountEvent, MLAccount
from mlaccounts.celery import app as celery_app
from tests.factories import AccountEventFactory, MLAccountFactory
from tests.mlmock import API, add_counts, token_body

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ml_settings")]

OVERVIEW = reverse("dashboard:overview")
LIST = reverse("dashboard:overview_list")
SYNC_ALL = reverse("dashboard:sync_all")
NEW = reverse("dashboard:connect_new")
HX = {"HX-Request": "true"}

ACCOUNT_ACTIONS = ["account_sync", "account_pause", "account_resume", "account_primary", "account_renew"]


def url(name, account):
    return reverse(f"dashboard:{name}", args=[account.pk])


def messages_after(response):
    """The messages a redirect leaves behind (read from the request that set them)."""
    return [str(m) for m in get_messages(response.wsgi_request)]


def templates_of(response):
    return [t.name for t in response.templates if t.name]


@pytest.fixture
def outsider_account(other_user):
    return MLAccountFactory(
        owner=other_user, is_primary=True, nickname="LOJA_CHARLIE", account_name="Loja do Charlie"
    )


# --- anonymous ---------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login_from_every_page(client, ml_account):
    gets = [OVERVIEW, LIST, NEW, url("account", ml_account), url("account_remove", ml_account)]
    posts = [SYNC_ALL, NEW, url("account", ml_account), url("account_remove", ml_account)]
    posts += [url(name, ml_account) for name in ACCOUNT_ACTIONS]
    for path in gets:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(reverse("account_login") + "?next="), path
    for path in posts:
        response = client.post(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(reverse("account_login")), path
    ml_account.refresh_from_db()
    assert ml_account.status == "active" and MLAccount.objects.count() == 1


def test_anonymous_htmx_refresh_is_told_to_load_the_login_page(client):
    response = client.get(LIST, headers={**HX, "HX-Current-URL": "http://testserver/"})
    assert response.status_code == 401
    assert response["HX-Redirect"] == reverse("account_login") + "?next=%2F"
    assert response.content == b""


def test_anonymous_htmx_refresh_ignores_a_foreign_current_url(client):
    response = client.get(LIST, headers={**HX, "HX-Current-URL": "https://evil.example//evil.example/x"})
    assert response["HX-Redirect"] == reverse("account_login") + "?next=%2F"


# --- outsiders -----------------------------------------------------------------------------------


def test_outsider_gets_404_for_every_page_of_someone_elses_account(client_user, outsider_account):
    for name in ["account", "account_remove"]:
        assert client_user.get(url(name, outsider_account)).status_code == 404, name
    for name in [*ACCOUNT_ACTIONS, "account", "account_remove"]:
        response = client_user.post(url(name, outsider_account), {"account_name": "Mine now"})
        assert response.status_code == 404, name
        assert client_user.post(url(name, outsider_account), headers=HX).status_code == 404, name
    outsider_account.refresh_from_db()
    assert outsider_account.account_name == "Loja do Charlie"
    assert outsider_account.status == "active" and outsider_account.is_primary
    assert MLAccount.objects.filter(pk=outsider_account.pk).exists()


def test_unknown_account_id_is_404_too(client_user):
    response = client_user.get("/ml-accounts/00000000-0000-0000-0000-000000000001/")
    assert response.status_code == 404
    assert "Página não encontrada" in response.content.decode()


def test_overview_lists_only_my_accounts(client_user, ml_account, outsider_account):
    body = client_user.get(OVERVIEW).content.decode()
    assert "Loja da Alice" in body
    assert "LOJA_CHARLIE" not in body and str(outsider_account.pk) not in body


# --- overview ----------------------------------------------------------------------------------------


def test_first_time_user_sees_an_empty_state_leading_to_the_connect_page(client_user):
    response = client_user.get(OVERVIEW)
    assert response.status_code == 200
    body = response.content.decode()
    assert "Conecte sua primeira conta do Mercado Livre" in body
    assert f'href="{NEW}"' in body
    assert 'id="sync-all"' not in body


def test_overview_shows_totals_and_one_card_per_account(client_user, user, ml_account):
    now = timezone.now()
    MLAccount.objects.filter(pk=ml_account.pk).update(
        cached_products=4820,
        cached_orders=12640,
        cached_questions=3,
        cached_claims=1,
        cached_at=now,
        last_sync=now - timedelta(minutes=3),
        last_sync_status="success",
    )
    second = MLAccountFactory(
        owner=user,
        nickname="LOJA_DOIS",
        account_name="Segunda",
        site_id="MLA",
        status="paused",
        sync_enabled=False,
        cached_products=10,
        cached_orders=2,
        cached_questions=0,
        cached_claims=0,
        cached_at=now,
    )
    response = client_user.get(OVERVIEW)
    body = response.content.decode()
    assert templates_of(response)[0] == "mlaccounts/overview.html"
    assert "_partials/_account_row.html" in templates_of(response)
    totals = re.search(r'<section class="totals".*?</section>', body, re.S).group(0)
    assert "4.830" in totals  # listings, summed and written the Brazilian way
    assert "12.642" in totals
    assert "1 ativa" in totals and "1 pausada" in totals
    # One card each, primary first, with its marker, site, status and counts.
    cards = re.findall(r'<li class="account-card[^"]*" id="account-([0-9a-f-]+)"', body)
    assert cards == [str(ml_account.pk), str(second.pk)]
    assert "★ </span>Principal" in body
    assert "Argentina" in body and "Pausada" in body
    assert "há 3\xa0minutos" in body
    assert f'id="toggle-{second.pk}"' in body and "Retomar sincronização" in body
    assert 'id="sync-all"' in body
    # Live: the list refreshes itself through htmx.
    assert f'hx-get="{LIST}"' in body and 'hx-trigger="every 10s"' in body and "data-etag=" in body


def test_overview_never_shows_tokens(client_user, ml_account):
    body = (
        client_user.get(OVERVIEW).content.decode()
        + client_user.get(url("account", ml_account)).content.decode()
    )
    assert ml_account.access_token not in body and ml_account.refresh_token not in body


def test_failed_sync_is_explained_in_words(client_user, ml_account):
    MLAccount.objects.filter(pk=ml_account.pk).update(
        last_sync_status="failed", last_sync_error="Mercado Livre is unavailable (Service Unavailable)."
    )
    AccountEventFactory(account=ml_account, kind="unavailable")
    body = client_user.get(OVERVIEW).content.decode()
    assert "O Mercado Livre não estava respondendo. A próxima sincronização tentará de novo." in body
    # The status code is not shown: as a word of its own (a random UUID or CSRF token on the
    # page may hold the digits 503, which made a plain `in` fail now and then).
    assert not re.search(r"\b503\b", body) and "Service Unavailable" not in body


def test_expired_account_offers_reconnect_instead_of_sync(client_user, ml_account):
    MLAccount.objects.filter(pk=ml_account.pk).update(status="expired", site_id="MLA")
    body = client_user.get(OVERVIEW).content.decode()
    assert f'href="{reverse("dashboard:connect")}?site=MLA"' in body
    assert url("account_sync", ml_account) not in body
    assert "Reconexão necessária" in body


def test_overview_is_pt_br_by_default_even_for_an_english_browser(client_user, ml_account):
    body = client_user.get(OVERVIEW, headers={"Accept-Language": "en-US,en;q=0.9"}).content.decode()
    assert '<html lang="pt-br">' in body
    assert "Suas contas do Mercado Livre" in body


def test_htmx_list_refresh_returns_the_partial_only(client_user, ml_account):
    response = client_user.get(LIST, headers=HX)
    assert response.status_code == 200
    assert templates_of(response)[0] == "_partials/_account_list.html"
    assert "base.html" not in templates_of(response)
    body = response.content.decode()
    assert "<html" not in body and f'id="account-{ml_account.pk}"' in body
    # A refresh carries no messages and leaves them for the page that will show them.
    assert "hx-swap-oob" not in body


def test_list_refresh_does_not_consume_pending_messages(client_user, ml_account):
    client_user.post(url("account_pause", ml_account))
    client_user.get(LIST, headers=HX)
    body = client_user.get(OVERVIEW).content.decode()
    assert "A sincronização de Loja da Alice está pausada" in body


# --- sync now, sync all ----------------------------------------------------------------------------


def test_sync_now_queues_a_task_and_calls_no_ml(
    client_user, ml_account, ml, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_user.post(url("account_sync", ml_account))
    assert response.status_code == 302 and response["Location"] == OVERVIEW
    assert messages_after(response) == ["Sincronização de Loja da Alice na fila."]
    assert queued == [str(ml_account.pk)]
    assert len(ml.calls) == 0
    ml_account.refresh_from_db()
    assert ml_account.sync_requested_at is not None and ml_account.last_sync_status == ""


def test_sync_now_through_htmx_shows_the_outcome_next_to_the_row(client_user, ml_account, queued):
    MLAccount.objects.filter(pk=ml_account.pk).update(cached_at=timezone.now())
    response = client_user.post(url("account_sync", ml_account), headers=HX)
    assert response.status_code == 200
    assert templates_of(response)[0] == "_partials/_account_list.html"
    body = response.content.decode()
    # Issue 12: the outcome is next to the row that was used, not at the top of the page.
    assert "hx-swap-oob" not in body
    card = re.search(rf'<li [^>]*id="account-{ml_account.pk}".*?</li>', body, re.S).group(0)
    assert f'id="notice-{ml_account.pk}"' in card and "Sincronização de Loja da Alice na fila." in card
    assert "Na fila para sincronizar…" in card


def test_a_row_shows_queued_then_syncing_then_the_outcome(client_user, ml_account, settings):
    def row():
        return client_user.get(LIST, headers=HX).content.decode()

    MLAccount.objects.filter(pk=ml_account.pk).update(
        sync_requested_at=timezone.now(), cached_at=timezone.now()
    )
    assert "Na fila para sincronizar…" in row()
    MLAccount.objects.filter(pk=ml_account.pk).update(sync_started_at=timezone.now())
    assert "Sincronizando…" in row() and "Na fila" not in row()
    MLAccount.objects.filter(pk=ml_account.pk).update(
        sync_started_at=None, sync_requested_at=None, last_sync_status="success", last_sync=timezone.now()
    )
    assert "A última sincronização deu certo." in row()
    MLAccount.objects.filter(pk=ml_account.pk).update(last_sync_status="failed")
    AccountEventFactory(account=ml_account, kind="rate_limited")
    assert "O Mercado Livre pediu para diminuirmos o ritmo." in row()
    # Issue 10 finding 10: a claim older than the lease is a dead worker's, not a sync.
    stale = timezone.now() - timedelta(seconds=settings.SYNC_LEASE_SECONDS + 1)
    MLAccount.objects.filter(pk=ml_account.pk).update(sync_started_at=stale)
    assert "Sincronização interrompida, tentando de novo…" in row()


def test_sync_now_runs_the_queued_sync_in_the_task(
    client_user, ml_account, ml, django_capture_on_commit_callbacks, settings
):
    add_counts(ml, products=120, orders=33, questions=4, claims=2)
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            client_user.post(url("account_sync", ml_account))
    finally:
        celery_app.conf.task_always_eager = previous
    ml_account.refresh_from_db()
    assert (ml_account.cached_products, ml_account.cached_orders) == (120, 33)
    assert ml_account.last_sync_status == "success" and ml_account.sync_requested_at is None


def test_sync_now_of_an_account_already_syncing_queues_nothing(client_user, ml_account, ml, queued):
    MLAccount.objects.filter(pk=ml_account.pk).update(sync_started_at=timezone.now())
    response = client_user.post(url("account_sync", ml_account))
    assert "já está sendo sincronizada" in messages_after(response)[0]
    assert queued == [] and len(ml.calls) == 0


def test_sync_all_queues_active_accounts_and_skips_paused_and_expired(
    client_user, user, ml_account, ml, queued, django_capture_on_commit_callbacks
):
    second = MLAccountFactory(owner=user)
    MLAccountFactory(owner=user, status="paused", sync_enabled=False)
    MLAccountFactory(owner=user, status="expired")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_user.post(SYNC_ALL)
    assert response.status_code == 302
    assert messages_after(response) == [
        "Sincronização de 2 contas na fila.",
        "1 conta pausada foi ignorada.",
        "1 conta aguardando reconexão foi ignorada.",
    ]
    assert sorted(queued) == sorted([str(ml_account.pk), str(second.pk)])
    assert len(ml.calls) == 0


def test_sync_all_without_accounts_says_there_is_nothing_to_do(client_user, queued):
    response = client_user.post(SYNC_ALL)
    assert messages_after(response) == ["Não há conta ativa para sincronizar."]
    assert queued == []


def test_expired_row_shows_the_refused_authorization_not_a_healthy_bar(client_user, ml_account):
    MLAccount.objects.filter(pk=ml_account.pk).update(
        status="expired", token_expires_at=timezone.now() + timedelta(hours=5)
    )
    body = client_user.get(LIST, headers=HX).content.decode()
    assert "O Mercado Livre recusou esta autorização." in body
    assert "<meter" not in body
    assert body.count(f'href="{reverse("dashboard:connect")}?site=MLB"') == 2


# --- the ML action limit, shared with the API ------------------------------------------------------


@pytest.fixture
def one_ml_action_a_minute(settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**rates, "ml_action": "1/min"},
    }
    cache.clear()
    yield
    cache.clear()


@pytest.mark.parametrize("action", ["account_sync", "account_renew", "sync_all"])
def test_ml_actions_over_the_limit_do_nothing_and_say_so(
    client_user, ml_account, ml, queued, one_ml_action_a_minute, action
):
    target = SYNC_ALL if action == "sync_all" else url(action, ml_account)
    client_user.post(url("account_sync", ml_account))  # spends the one action of the minute
    queued.clear()

    for headers in ({}, HX):
        response = client_user.post(target, headers=headers)
        assert response.status_code == 429
        assert int(response["Retry-After"]) >= 1
        assert "Muitos pedidos ao Mercado Livre. Nada foi feito" in response.content.decode()
    assert queued == [] and len(ml.calls) == 0


def test_the_dashboard_and_the_api_share_one_ml_action_count(
    client_user, user, ml_account, queued, one_ml_action_a_minute
):
    api = APIClient()
    api.force_authenticate(user)
    client_user.post(url("account_sync", ml_account))

    response = api.post(f"/api/ml-accounts/{ml_account.pk}/sync")

    assert response.status_code == 429 and response.json()["code"] == "RATE_LIMITED"


def test_actions_refuse_get(client_user, ml_account):
    for name in ACCOUNT_ACTIONS:
        assert client_user.get(url(name, ml_account)).status_code == 405, name
    assert client_user.get(SYNC_ALL).status_code == 405


def test_actions_need_the_csrf_token(user, ml_account):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    response = browser.post(url("account_pause", ml_account))
    assert response.status_code == 403
    assert "Tente de novo" in response.content.decode()
    ml_account.refresh_from_db()
    assert ml_account.status == "active"


# --- pause, resume, make primary -----------------------------------------------------------------


def test_pause_and_resume(client_user, ml_account):
    response = client_user.post(url("account_pause", ml_account))
    assert response["Location"] == OVERVIEW
    assert messages_after(response) == [
        "A sincronização de Loja da Alice está pausada: os números não serão atualizados até você retomá-la."
    ]
    ml_account.refresh_from_db()
    assert ml_account.status == "paused" and not ml_account.sync_enabled and ml_account.next_sync is None

    response = client_user.post(url("account_resume", ml_account), headers=HX)
    assert templates_of(response)[0] == "_partials/_account_list.html"
    assert "A sincronização de Loja da Alice foi retomada" in response.content.decode()
    ml_account.refresh_from_db()
    assert ml_account.status == "active" and ml_account.sync_enabled and ml_account.next_sync is not None


def test_actions_return_to_the_page_they_came_from_if_it_is_ours(client_user, ml_account):
    detail = url("account", ml_account)
    response = client_user.post(url("account_pause", ml_account), {"next": detail})
    assert response["Location"] == detail
    response = client_user.post(url("account_resume", ml_account), {"next": "https://evil.example/"})
    assert response["Location"] == OVERVIEW


def test_make_primary_demotes_the_previous_one(client_user, user, ml_account):
    second = MLAccountFactory(owner=user, account_name="Segunda")
    response = client_user.post(url("account_primary", second), headers=HX)
    body = response.content.decode()
    assert "Segunda agora é sua conta principal." in body
    # The new primary is listed first and carries the marker, focusable where the button was.
    cards = re.findall(r'id="account-([0-9a-f-]+)"', body)
    assert cards[0] == str(second.pk)
    assert f'id="primary-{second.pk}" tabindex="-1"' in body
    second.refresh_from_db()
    ml_account.refresh_from_db()
    assert second.is_primary and not ml_account.is_primary


# --- renew the token ----------------------------------------------------------------------------------


def test_renew_now_stores_a_new_pair(client_user, ml_account, ml):
    ml.add(responses.POST, API + "/oauth/token", json=token_body(ml_account.ml_user_id, 7))
    response = client_user.post(url("account_renew", ml_account))
    assert response["Location"] == url("account", ml_account)
    assert messages_after(response) == ["O token de Loja da Alice foi renovado."]
    ml_account.refresh_from_db()
    assert ml_account.access_token == token_body(ml_account.ml_user_id, 7)["access_token"]
    assert ml_account.last_token_refresh is not None


def test_renew_now_refused_by_ml_marks_the_account_expired(client_user, ml_account, ml):
    ml.add(
        responses.POST,
        API + "/oauth/token",
        status=400,
        json={"error": "invalid_grant", "error_description": "used", "status": 400, "cause": []},
    )
    response = client_user.post(url("account_renew", ml_account))
    assert messages_after(response) == [
        "O Mercado Livre recusou renovar o token de Loja da Alice. Reconecte a conta."
    ]
    ml_account.refresh_from_db()
    assert ml_account.status == "expired"


def test_renew_now_when_ml_is_down_changes_nothing(client_user, ml_account, ml):
    before = ml_account.access_token
    ml.add(responses.POST, API + "/oauth/token", status=503, body="down")
    response = client_user.post(url("account_renew", ml_account))
    assert messages_after(response) == [
        "O Mercado Livre não está respondendo agora. Tente de novo em alguns minutos."
    ]
    ml_account.refresh_from_db()
    assert ml_account.access_token == before and ml_account.status == "active"


def test_renew_now_without_a_refresh_token(client_user, ml_account, ml):
    MLAccount.objects.filter(pk=ml_account.pk).update(refresh_token=None)
    response = client_user.post(url("account_renew", ml_account))
    assert messages_after(response) == [
        "Esta conta não tem token de renovação; reconecte-a ao Mercado Livre."
    ]
    assert len(ml.calls) == 0


# --- the account page ----------------------------------------------------------------------------------


def test_account_page_shows_settings_token_and_history(client_user, ml_account):
    AccountEventFactory(account=ml_account, kind="rate_limited", message="Mercado Livre rate limit reached.")
    response = client_user.get(url("account", ml_account))
    assert response.status_code == 200
    body = response.content.decode()
    assert "<h1>Loja da Alice</h1>" in body
    # 300 s is shown as 5 minutes.
    assert 'name="interval_value" value="5"' in body
    assert re.search(r'<option value="minutes" selected>', body)
    assert "Token de acesso" in body and "Renovar agora" in body
    assert "Limite de chamadas" in body and "Mercado Livre rate limit reached." in body
    assert f'href="{url("account_remove", ml_account)}"' in body


def test_account_page_of_an_expired_account_offers_reconnect(client_user, ml_account):
    MLAccount.objects.filter(pk=ml_account.pk).update(status="expired", site_id="MLM")
    body = client_user.get(url("account", ml_account)).content.decode()
    assert f'href="{reverse("dashboard:connect")}?site=MLM"' in body
    assert "É preciso reconectar." in body
    assert url("account_renew", ml_account) not in body


def test_settings_form_saves_name_type_and_interval(client_user, ml_account):
    response = client_user.post(
        url("account", ml_account),
        {
            "account_name": "  Loja Nova  ",
            "account_type": "store",
            "interval_value": "2",
            "interval_unit": "minutes",
        },
    )
    assert response.status_code == 302 and response["Location"] == url("account", ml_account)
    assert messages_after(response) == ["As configurações foram salvas."]
    ml_account.refresh_from_db()
    assert (ml_account.account_name, ml_account.account_type, ml_account.sync_interval) == (
        "Loja Nova",
        "store",
        120,
    )


def test_settings_interval_in_seconds(client_user, ml_account):
    client_user.post(
        url("account", ml_account),
        {
            "account_name": "Loja",
            "account_type": "individual",
            "interval_value": "90",
            "interval_unit": "seconds",
        },
    )
    ml_account.refresh_from_db()
    assert ml_account.sync_interval == 90
    body = client_user.get(url("account", ml_account)).content.decode()
    assert 'name="interval_value" value="90"' in body


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"interval_value": "30", "interval_unit": "seconds"},
            "interval_value",
            "no máximo uma vez por minuto",
        ),
        ({"interval_value": "0", "interval_unit": "minutes"}, "interval_value", "maior ou igual a 1"),
        (
            {"interval_value": "10081", "interval_unit": "minutes"},
            "interval_value",
            "no máximo 10080 minutos",
        ),
        ({"interval_value": "cinco"}, "interval_value", "Informe um número inteiro"),
        ({"account_name": "   "}, "account_name", "Este campo é obrigatório"),
        ({"account_type": "martian"}, "account_type", "Faça uma escolha válida"),
    ],
)
def test_settings_form_refuses_bad_input_and_says_where(client_user, ml_account, data, field, message):
    form = {
        "account_name": "Outro nome",
        "account_type": "store",
        "interval_value": "5",
        "interval_unit": "minutes",
    }
    response = client_user.post(url("account", ml_account), {**form, **data})
    assert response.status_code == 400
    body = response.content.decode()
    error = re.search(rf'<ul class="errorlist" id="id_{field}_error">(.*?)</ul>', body, re.S)
    assert error and message in error.group(1)
    assert re.search(rf'<(input|select)[^>]*aria-invalid="true"[^>]*id="id_{field}"', body) or re.search(
        rf'<(input|select)[^>]*id="id_{field}"[^>]*aria-invalid="true"', body
    )
    ml_account.refresh_from_db()
    assert (ml_account.account_name, ml_account.sync_interval) == ("Loja da Alice", 300)


def test_settings_form_shows_service_errors_on_their_fields(client_user, ml_account, monkeypatch):
    def refuse(**kwargs):
        raise AccountValidationError(
            {
                "sync_interval": ["Muito curto."],
                "account_type": ["Tipo ruim."],
                "something_else": ["Outro problema."],
            }
        )

    monkeypatch.setattr(services, "mlaccount_update", refuse)
    response = client_user.post(
        url("account", ml_account),
        {"account_name": "X", "account_type": "store", "interval_value": "5", "interval_unit": "minutes"},
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert re.search(r'id="id_interval_value_error"><li>Muito curto.</li>', body)
    assert re.search(r'id="id_account_type_error"><li>Tipo ruim.</li>', body)
    assert 'class="errorlist nonfield"' in body and "Outro problema." in body


# --- remove -------------------------------------------------------------------------------------------


def test_remove_asks_for_confirmation_naming_the_account(client_user, ml_account):
    response = client_user.get(url("account_remove", ml_account))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Remover Loja da Alice (@LOJA_ALICE)?" in body
    assert "Sim, remover Loja da Alice" in body
    assert MLAccount.objects.filter(pk=ml_account.pk).exists()


def test_remove_deletes_and_passes_primary_on(client_user, user, ml_account):
    second = MLAccountFactory(owner=user)
    AccountEventFactory(account=ml_account)
    response = client_user.post(url("account_remove", ml_account))
    assert response["Location"] == OVERVIEW
    assert messages_after(response) == ["Loja da Alice foi removida do ML Accounts."]
    assert not MLAccount.objects.filter(pk=ml_account.pk).exists()
    assert not AccountEvent.objects.filter(account_id=ml_account.pk).exists()
    second.refresh_from_db()
    assert second.is_primary


# --- connecting -------------------------------------------------------------------------------------------

TOKENS = {
    "site": "MLB",
    "ml_user_id": "2500000001234",
    "nickname": "LOJA_COLADA",
    "email": "colada@example.com",
    "access_token": "APP_USR-pasted-access-0001",
    "refresh_token": "TG-pasted-refresh-0001",
    "token_expires_at": "2031-05-04T10:30",
    "account_name": "",
    "account_type": "individual",
}


def test_connect_page_offers_the_site_picker_and_the_token_form(client_user):
    response = client_user.get(NEW)
    assert response.status_code == 200
    body = response.content.decode()
    picker = re.search(r'<select name="site"[^>]*id="connect-site">(.*?)</select>', body, re.S).group(1)
    assert re.findall(r'<option value="(\w+)"', picker)[:2] == ["MLB", "MLA"]
    assert '<option value="MLB" selected>Brasil</option>' in picker
    assert f'action="{reverse("dashboard:connect")}"' in body
    assert re.search(r'<input type="password" name="access_token"', body)
    assert re.search(r'<input type="password" name="refresh_token"', body)


def test_connect_with_a_token_pair(client_user, user):
    response = client_user.post(NEW, TOKENS)
    assert response.status_code == 302 and response["Location"] == OVERVIEW
    assert messages_after(response) == ["A conta LOJA_COLADA está conectada."]
    account = MLAccount.objects.get(workspace__personal_for=user)
    assert account.ml_user_id == 2500000001234 and account.is_primary
    assert account.access_token == "APP_USR-pasted-access-0001"
    assert account.refresh_token == "TG-pasted-refresh-0001"
    assert account.account_name == "LOJA_COLADA"
    # Typed in the user's time zone (America/Sao_Paulo, UTC-3).
    assert account.token_expires_at == datetime(2031, 5, 4, 13, 30, tzinfo=UTC)


def test_connect_with_a_token_pair_reconnects_a_known_seller(client_user, user):
    existing = MLAccountFactory(owner=user, ml_user_id=2500000001234, status="expired", is_primary=True)
    response = client_user.post(NEW, TOKENS)
    assert messages_after(response) == ["A conta LOJA_COLADA foi reconectada."]
    existing.refresh_from_db()
    assert existing.status == "active" and existing.access_token == "APP_USR-pasted-access-0001"
    assert MLAccount.objects.filter(workspace__personal_for=user).count() == 1


def test_connect_with_bad_values_keeps_the_pasted_tokens(client_user):
    # Issue 12: one mistyped field no longer makes the user paste both tokens again (the
    # token form's own tests: test_connect_token_form.py).
    response = client_user.post(NEW, {**TOKENS, "ml_user_id": "12ab", "token_expires_at": "amanhã"})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Use apenas dígitos." in body
    assert "Informe uma data/hora válida." in body
    assert f'value="{TOKENS["access_token"]}"' in body and f'value="{TOKENS["refresh_token"]}"' in body
    assert '<details class="panel advanced" open>' in body
    assert not MLAccount.objects.exists()


def test_connect_with_tokens_shows_service_errors(client_user):
    response = client_user.post(NEW, {**TOKENS, "site": "MLB", "access_token": "x" * 2001})
    assert response.status_code == 400
    assert not MLAccount.objects.exists()


def test_connect_site_picker_refuses_an_unknown_site(client_user):
    response = client_user.get(reverse("dashboard:connect"), {"site": "ZZZ"})
    assert response["Location"] == NEW
    assert messages_after(response) == ["Escolha um país do Mercado Livre na lista."]


# --- language, sandbox banner -------------------------------------------------------------------------


def test_language_switcher_remembers_english(client_user, ml_account, settings):
    response = client_user.post(reverse("set_language"), {"language": "en", "next": OVERVIEW})
    assert response.status_code == 302
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    body = client_user.get(OVERVIEW).content.decode()
    assert '<html lang="en">' in body and "Your Mercado Livre accounts" in body
    client_user.post(reverse("set_language"), {"language": "es", "next": OVERVIEW})
    body = client_user.get(OVERVIEW).content.decode()
    assert '<html lang="es">' in body and "Tus cuentas de Mercado Libre" in body


def test_allauth_pages_are_translated_too(client):
    body = client.get(reverse("account_login")).content.decode()
    assert "Entrar" in body and "Criar conta" in body
    client.cookies["django_language"] = "es"
    body = client.get(reverse("account_signup")).content.decode()
    assert "Iniciar sesión" in body and "Contraseña" in body


def test_sandbox_banner_says_the_data_is_not_real(client, settings):
    settings.ML_SANDBOX = True
    body = client.get(reverse("account_login")).content.decode()
    assert "Modo sandbox:" in body and "Nada é real" in body
    assert "ML_CLIENT_ID" in body and reverse("dashboard:connect_callback") in body
    settings.ML_SANDBOX = False
    assert "Modo sandbox" not in client.get(reverse("account_login")).content.decode()
