"""Issue 12: the overview for hundreds of accounts. Problems first, filters, search, sort
and pages in the query string, totals as links, the table, bulk actions, and a live refresh
that sends nothing while nothing changed."""

import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import MLAccount, Role
from mlaccounts import overview
from tests.factories import AccountEventFactory, MLAccountFactory, WorkspaceFactory, member

pytestmark = pytest.mark.django_db

OVERVIEW = reverse("dashboard:overview")
LIST = reverse("dashboard:overview_list")
BULK = reverse("dashboard:bulk")
HX = {"HX-Request": "true"}


def rows(body: str) -> list[str]:
    """The account ids of the table's rows (or the cards), in page order."""
    return re.findall(r'<(?:tr|li) class="account-(?:row|card)[^"]*" id="account-([0-9a-f-]+)"', body)


def english(client: Client) -> Client:
    client.cookies["django_language"] = "en"
    return client


@pytest.fixture
def fleet(user):
    """One account of each kind a seller must tell apart, named so that the name order is
    the opposite of the problems-first order."""
    now = timezone.now()
    synced = {"cached_at": now, "last_sync": now - timedelta(minutes=5), "last_sync_status": "success"}
    return {
        "paused": MLAccountFactory(owner=user, account_name="A paused", status="paused", sync_enabled=False),
        "fine": MLAccountFactory(owner=user, account_name="B fine", cached_questions=7, **synced),
        "failing": MLAccountFactory(
            owner=user, account_name="C failing", last_sync_status="failed", error_count=2, cached_at=now
        ),
        "dying": MLAccountFactory(
            owner=user, account_name="D dying", token_expires_at=now + timedelta(minutes=10), **synced
        ),
        "error": MLAccountFactory(
            owner=user, account_name="E error", status="error", last_sync_status="failed", error_count=7
        ),
        "expired": MLAccountFactory(owner=user, account_name="F expired", status="expired", site_id="MLA"),
    }


def test_the_default_order_puts_what_needs_the_seller_first(client_user, fleet):
    order = rows(client_user.get(OVERVIEW + "?view=table", follow=True).content.decode())
    expected = ["expired", "error", "dying", "failing", "fine", "paused"]
    assert order == [str(fleet[name].pk) for name in expected]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("name", ["paused", "fine", "failing", "dying", "error", "expired"]),
        ("-name", ["expired", "error", "dying", "failing", "fine", "paused"]),
        # Counts not known yet sort last, both ways.
        ("-questions", ["fine", "failing", "dying", "paused", "error", "expired"]),
        ("status", ["fine", "failing", "dying", "error", "expired", "paused"]),
        ("site", ["expired", "paused", "fine", "failing", "dying", "error"]),
    ],
)
def test_sort_by_a_column_both_ways(client_user, fleet, sort, expected):
    MLAccount.objects.filter(pk__in=[fleet["dying"].pk, fleet["failing"].pk]).update(cached_questions=0)
    order = rows(client_user.get(f"{OVERVIEW}?view=table&sort={sort}", follow=True).content.decode())
    assert order == [str(fleet[name].pk) for name in expected]


def test_every_column_header_sorts_and_says_how(client_user, fleet):
    body = client_user.get(OVERVIEW + "?view=table&sort=-orders", follow=True).content.decode()
    for column in ("name", "status", "site", "products", "questions", "claims", "token", "last_sync"):
        assert f'href="?sort={column}" id="sort-{column}"' in body
    # The current column offers the other direction and says it is sorted.
    assert 'aria-sort="descending"><a href="?sort=orders" id="sort-orders"' in body


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=error", ["error"]),
        ("status=error,expired", ["expired", "error"]),
        ("status=expired&status=paused", ["expired", "paused"]),
        ("site=MLA", ["expired"]),
        ("site=mla", ["expired"]),
        ("has=questions", ["fine"]),
        ("q=fail", ["failing"]),
        ("q=%40SELLER", None),  # a nickname with its @
        ("status=nonsense", ["expired", "error", "dying", "failing", "fine", "paused"]),
    ],
)
def test_filters_and_search(client_user, fleet, query, expected):
    body = client_user.get(f"{OVERVIEW}?view=table&{query}", follow=True).content.decode()
    if expected is None:
        assert len(rows(body)) == 6
    else:
        assert rows(body) == [str(fleet[name].pk) for name in expected]


def test_search_finds_a_seller_by_nickname_or_ml_user_id(client_user, fleet):
    fine = fleet["fine"]
    for term in (fine.nickname.lower(), str(fine.ml_user_id)):
        assert rows(
            client_user.get(OVERVIEW, {"q": term, "view": "table"}, follow=True).content.decode()
        ) == [str(fine.pk)]


def test_a_filter_that_matches_nothing_says_so_and_keeps_the_totals(client_user, fleet):
    body = client_user.get(OVERVIEW, {"q": "nobody by this name"}, follow=True).content.decode()
    assert 'id="no-match"' in body and rows(body) == []
    assert 'id="total-all">6<' in body


def test_bad_query_values_never_break_the_page(client_user, fleet):
    for query in (
        "page=abc",
        "page=99999",
        "page=-1",
        "sort=password",
        "q=" + "x" * 5000,
        "status=%00",
        "site=ZZZZZ",
    ):
        response = client_user.get(f"{OVERVIEW}?{query}", follow=True)
        assert response.status_code == 200, query
    body = client_user.get(OVERVIEW, {"q": "x" * 5000}, follow=True).content.decode()
    assert 'value="' + "x" * overview.SEARCH_MAX_LENGTH + '"' in body


def test_fifty_rows_a_page_and_the_links_keep_the_view(client_user, user):
    MLAccountFactory.create_batch(120, owner=user, status="error")
    body = client_user.get(OVERVIEW, {"status": "error", "sort": "name"}, follow=True).content.decode()
    assert len(rows(body)) == 50
    assert 'href="?status=error&amp;sort=name&amp;page=2" rel="next"' in body
    third = client_user.get(
        OVERVIEW, {"status": "error", "sort": "name", "page": "3"}, follow=True
    ).content.decode()
    assert len(rows(third)) == 20
    # The live refresh polls the same view.
    assert f'hx-get="{LIST}?status=error&amp;sort=name&amp;page=3"' in third
    # Everything the filter matches, for the bulk actions: 120, not just this page.
    assert (
        "All 120 accounts that match"
        in english(client_user).get(OVERVIEW, {"status": "error"}, follow=True).content.decode()
    )


def test_totals_link_to_the_matching_filter(client_user, fleet):
    body = client_user.get(OVERVIEW, follow=True).content.decode()
    assert 'href="?status=error" id="total-error"' in body
    assert 'href="?status=expired" id="total-expired"' in body
    assert 'href="?status=paused" id="total-paused"' in body
    assert 'href="?has=questions&amp;sort=-questions" id="total-questions"' in body
    # The totals count every account: their links drop the view's filter.
    filtered = client_user.get(OVERVIEW, {"status": "paused"}, follow=True).content.decode()
    assert 'href="?sort=-products" id="total-products"' in filtered
    assert rows(client_user.get(OVERVIEW + "?status=expired", follow=True).content.decode()) == [
        str(fleet["expired"].pk)
    ]


def test_table_past_a_handful_of_accounts_cards_for_a_few_and_the_choice_is_remembered(client_user, user):
    MLAccountFactory.create_batch(overview.CARDS_UP_TO, owner=user)
    assert '<ul class="account-cards"' in client_user.get(OVERVIEW, follow=True).content.decode()
    MLAccountFactory(owner=user)
    assert 'id="account-table"' in client_user.get(OVERVIEW, follow=True).content.decode()
    client_user.get(OVERVIEW + "?view=cards", follow=True)
    assert '<ul class="account-cards"' in client_user.get(OVERVIEW, follow=True).content.decode()
    assert '<ul class="account-cards"' in client_user.get(LIST, headers=HX).content.decode()


def test_a_table_row_shows_status_counts_token_times_and_the_problem(client_user, fleet):
    AccountEventFactory(account=fleet["error"], kind="unavailable")
    body = english(client_user).get(OVERVIEW + "?view=table", follow=True).content.decode()
    row = re.search(rf'<tr [^>]*id="account-{fleet["error"].pk}".*?</tr>', body, re.S).group(0)
    assert "Mercado Livre was not answering" in row
    expired = re.search(rf'<tr [^>]*id="account-{fleet["expired"].pk}".*?</tr>', body, re.S).group(0)
    assert "Refused" in expired and "Reconnect" in expired and "Valid" not in expired
    dying = re.search(rf'<tr [^>]*id="account-{fleet["dying"].pk}".*?</tr>', body, re.S).group(0)
    assert "Expiring" in dying
    fine = re.search(rf'<tr [^>]*id="account-{fleet["fine"].pk}".*?</tr>', body, re.S).group(0)
    # The count opens the questions queue, filtered to the account (issue 14).
    pk = fleet["fine"].pk
    questions = f'href="/questions/?account={pk}" id="questions-link-{pk}">7</a></td>'
    assert 'data-label="Questions" title="Unanswered questions">' in fine and questions in fine
    assert "needs-attention" in fine
    assert "Valid" in fine and "5\xa0minutes ago" in fine and "expires <time" in fine


# --- wording (issue 12's first-time user) ---------------------------------------------------


def test_pause_says_it_pauses_syncing_not_the_listings(client_user, fleet):
    body = english(client_user).get(OVERVIEW + "?view=cards", follow=True).content.decode()
    assert "Pause syncing" in body and "Resume syncing" in body
    assert ">Pause<" not in body and ">Resume<" not in body


@pytest.fixture
def failing(user):
    """An account in error after 6 failures in a row: retried every 20 minutes, not 5."""
    now = timezone.now()
    return MLAccountFactory(
        owner=user,
        status="error",
        last_sync_status="failed",
        error_count=6,
        sync_interval=300,
        last_sync=now - timedelta(hours=2),
        next_sync=now + timedelta(minutes=19, seconds=30),
    )


def test_a_failing_account_says_last_successful_sync_and_explains_the_back_off(client_user, failing):
    account = failing
    for view in ("table", "cards"):
        body = english(client_user).get(f"{OVERVIEW}?view={view}", follow=True).content.decode()
        assert "Last successful sync:" in body
        note = re.search(rf'id="retry-{account.pk}">(.*?)</span>', body, re.S).group(1)
        assert " ".join(note.split()) == (
            "(after 6 failed syncs in a row it is retried every 20 minutes instead of every 5 minutes)"
        )
        assert "in 19\xa0minutes" in body


def test_times_carry_the_absolute_date_in_a_tooltip(client_user, fleet):
    body = client_user.get(OVERVIEW + "?view=table", follow=True).content.decode()
    stamp = timezone.localtime(fleet["fine"].last_sync)
    assert re.search(
        rf'<time datetime="{re.escape(stamp.isoformat(timespec="seconds"))}" title="[^"]*\d{{4}}[^"]*"', body
    )


def test_a_new_account_reads_first_sync_until_its_first_sync_lands(client_user, user):
    account = MLAccountFactory(owner=user, sync_requested_at=timezone.now(), cached_at=None)
    body = english(client_user).get(OVERVIEW, follow=True).content.decode()
    assert f'id="sync-state-{account.pk}"' in body and "First sync…" in body
    MLAccount.objects.filter(pk=account.pk).update(sync_requested_at=None)
    assert "Not synced yet." in english(client_user).get(OVERVIEW, follow=True).content.decode()


# --- the live refresh ------------------------------------------------------------------------


def test_the_live_refresh_answers_304_until_something_changes(client_user, fleet):
    first = client_user.get(LIST, headers=HX)
    etag = first["ETag"]
    assert (
        first.status_code == 200
        and f'data-etag="{etag.replace(chr(34), "&quot;")}"' in first.content.decode()
    )
    again = client_user.get(LIST, headers={**HX, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    MLAccount.objects.filter(pk=fleet["fine"].pk).update(cached_questions=8)
    changed = client_user.get(LIST, headers={**HX, "If-None-Match": etag})
    assert changed.status_code == 200 and changed["ETag"] != etag


@pytest.mark.parametrize(
    "change",
    [
        {"status": "paused"},
        {"account_name": "Renamed"},
        {"sync_started_at": "now"},
        {"last_sync_status": "failed"},
        {"next_sync": "now"},
        {"cached_claims": 3},
    ],
)
def test_any_change_a_row_shows_gives_a_new_version(client_user, fleet, change):
    etag = client_user.get(LIST, headers=HX)["ETag"]
    values = {key: timezone.now() if value == "now" else value for key, value in change.items()}
    MLAccount.objects.filter(pk=fleet["fine"].pk).update(**values)
    assert client_user.get(LIST, headers={**HX, "If-None-Match": etag}).status_code == 200


def test_the_version_depends_on_the_view_and_the_language(client_user, fleet):
    plain = client_user.get(LIST, headers=HX)["ETag"]
    assert client_user.get(LIST + "?status=error", headers={**HX, "If-None-Match": plain}).status_code == 200
    english(client_user)
    assert client_user.get(LIST, headers={**HX, "If-None-Match": plain}).status_code == 200


def test_an_action_answers_with_the_list_the_user_is_looking_at(
    client_user, fleet, queued, django_capture_on_commit_callbacks
):
    fine = fleet["fine"]
    action = reverse("dashboard:account_sync", args=[fine.pk]) + "?status=active&view=table"
    with django_capture_on_commit_callbacks(execute=True):
        body = client_user.post(action, headers=HX).content.decode()
    assert rows(body) == [str(fleet[name].pk) for name in ("dying", "failing", "fine")]
    assert f'id="notice-{fine.pk}"' in body
    assert queued == [str(fine.pk)]


# --- bulk actions ----------------------------------------------------------------------------


def messages_of(response):
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_bulk_sync_of_ticked_rows_queues_and_counts_the_skipped(
    client_user, fleet, queued, django_capture_on_commit_callbacks
):
    ids = [str(fleet[name].pk) for name in ("fine", "dying", "paused", "expired")]
    with django_capture_on_commit_callbacks(execute=True):
        response = english(client_user).post(BULK, {"action": "sync", "ids": ids, "next": "/?status=error"})
    assert response.status_code == 302 and response["Location"] == "/?status=error"
    assert messages_of(response) == ["2 queued, 1 skipped (paused), 1 skipped (waiting for reconnection)."]
    assert sorted(queued) == sorted([str(fleet["fine"].pk), str(fleet["dying"].pk)])


def test_bulk_pause_of_everything_the_filter_matches(client_user, fleet):
    response = english(client_user).post(BULK, {"action": "pause", "scope": "matching", "status": "active"})
    assert messages_of(response) == ["3 paused."]
    paused = set(MLAccount.objects.filter(status="paused").values_list("account_name", flat=True))
    assert paused == {"A paused", "B fine", "C failing", "D dying"}


def test_bulk_resume_skips_what_is_not_paused(client_user, fleet):
    ids = [str(fleet["paused"].pk), str(fleet["fine"].pk)]
    response = english(client_user).post(BULK, {"action": "resume", "ids": ids})
    assert messages_of(response) == ["1 resumed, 1 skipped (not paused)."]
    assert MLAccount.objects.get(pk=fleet["paused"].pk).status == "active"


def test_bulk_remove_asks_first_and_names_how_many(client_user, fleet):
    ids = [str(fleet["paused"].pk), str(fleet["fine"].pk)]
    confirm = english(client_user).post(BULK, {"action": "remove", "ids": ids, "next": "/?sort=name"})
    assert confirm.status_code == 200
    body = confirm.content.decode()
    assert "Remove 2 accounts?" in body and "Yes, remove 2 accounts" in body
    assert MLAccount.objects.count() == 6
    done = client_user.post(BULK, {"action": "remove", "ids": ids, "confirm": "yes", "next": "/?sort=name"})
    assert done["Location"] == "/?sort=name"
    assert messages_of(done) == ["2 removed."]
    assert not MLAccount.objects.filter(pk__in=ids).exists() and MLAccount.objects.count() == 4


def test_bulk_needs_an_action_and_a_selection(client_user, fleet):
    assert client_user.post(BULK, {"action": "explode", "ids": [str(fleet["fine"].pk)]}).status_code == 400
    response = english(client_user).post(BULK, {"action": "pause"})
    assert response.status_code == 400
    assert "Tick the accounts first" in response.content.decode()
    assert MLAccount.objects.filter(status="paused").count() == 1


def test_bulk_on_another_users_accounts_finds_nothing_and_changes_nothing(client_user, other_user, fleet):
    theirs = MLAccountFactory(owner=other_user)
    ids = [str(theirs.pk), "not-a-uuid", str(fleet["fine"].pk)]
    response = english(client_user).post(BULK, {"action": "pause", "ids": ids})
    assert messages_of(response) == ["1 paused, 2 skipped (not found)."]
    theirs.refresh_from_db()
    assert theirs.status == "active"
    # "Everything that matches" is only ever the caller's own workspace.
    english(client_user).post(BULK, {"action": "pause", "scope": "matching"})
    theirs.refresh_from_db()
    assert theirs.status == "active"


def test_bulk_follows_the_roles(client, user, other_user, queued, django_capture_on_commit_callbacks):
    workspace = WorkspaceFactory()
    member(workspace, other_user, Role.OWNER)
    accounts = MLAccountFactory.create_batch(3, workspace=workspace)
    member(workspace, user, Role.OPERATOR)
    user.current_workspace = workspace
    user.save()
    client.force_login(user)
    ids = [str(account.pk) for account in accounts]
    response = english(client).post(BULK, {"action": "pause", "ids": ids})
    assert messages_of(response) == ["0 paused, 3 skipped (your role does not allow it)."]
    assert not MLAccount.objects.filter(status="paused").exists()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(BULK, {"action": "sync", "ids": ids})
    assert len(queued) == 3
    body = client.get(OVERVIEW + "?view=table", follow=True).content.decode()
    assert 'id="bulk-sync"' in body and 'id="bulk-pause"' not in body


def test_bulk_is_for_signed_in_users_only(client, ml_account):
    response = client.post(BULK, {"action": "pause", "ids": [str(ml_account.pk)]})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    ml_account.refresh_from_db()
    assert ml_account.status == "active"


def shown(body: str) -> str:
    """The versions app.js sends for the list in `body` (X-Overview-Rows)."""
    layout = re.search(r'data-layout="([^"]*)"', body).group(1)
    totals = re.search(r'id="totals" data-v="([^"]*)"', body).group(1)
    rows = re.findall(r'id="account-[0-9a-f-]+" data-v="([0-9a-f]+)"', body)
    return f"{layout};{totals};{','.join(rows)}"


def test_the_live_refresh_sends_only_the_rows_that_changed(client_user, fleet):
    first = client_user.get(LIST, headers=HX)
    versions = shown(first.content.decode())
    MLAccount.objects.filter(pk=fleet["fine"].pk).update(cached_orders=41)
    headers = {**HX, "If-None-Match": first["ETag"], "X-Overview-Rows": versions}
    delta = client_user.get(LIST, headers=headers)
    assert delta.status_code == 200 and delta["X-Overview-Delta"] == "1"
    body = delta.content.decode()
    # That row, and the totals (their orders moved), nothing else.
    assert rows(body) == [str(fleet["fine"].pk)] and 'id="totals"' in body
    assert "41" in body and 'id="account-list"' not in body
    # A change that moves a row (problems first) is the whole list again.
    MLAccount.objects.filter(pk=fleet["fine"].pk).update(status="error")
    whole = client_user.get(LIST, headers=headers)
    assert "X-Overview-Delta" not in whole and 'id="account-list"' in whole.content.decode()


def test_a_row_change_that_leaves_the_totals_sends_the_row_alone(client_user, fleet):
    first = client_user.get(LIST, headers=HX)
    MLAccount.objects.filter(pk=fleet["dying"].pk).update(sync_started_at=timezone.now())
    headers = {**HX, "If-None-Match": first["ETag"], "X-Overview-Rows": shown(first.content.decode())}
    body = client_user.get(LIST, headers=headers).content.decode()
    assert rows(body) == [str(fleet["dying"].pk)] and 'id="totals"' not in body


NONSENSE = ["", ";;", "a;b;c", "x" * 20000, "\x00;\x00;\x00", "a;b;" + ",".join(["z"] * 999)]


@pytest.mark.parametrize("header", NONSENSE)
def test_nonsense_versions_get_the_whole_list(client_user, fleet, header):
    response = client_user.get(LIST, headers={**HX, "X-Overview-Rows": header, "If-None-Match": "garbage"})
    assert response.status_code == 200 and 'id="account-list"' in response.content.decode()


def test_the_account_page_says_pause_syncing_last_successful_sync_and_the_back_off(client_user, failing):
    account = failing
    body = english(client_user).get(reverse("dashboard:account", args=[account.pk])).content.decode()
    assert "Pause syncing" in body and ">Pause<" not in body
    assert "<dt>Last successful sync</dt>" in body
    assert "retried every 20 minutes instead of every 5 minutes" in body


def test_bulk_remove_of_everything_that_matches_confirms_the_filter_not_a_list_of_ids(client_user, user):
    MLAccountFactory.create_batch(3, owner=user, site_id="MLA")
    keep = MLAccountFactory(owner=user, site_id="MLB")
    confirm = english(client_user).post(BULK, {"action": "remove", "scope": "matching", "site": "MLA"})
    body = confirm.content.decode()
    assert "Remove 3 accounts?" in body
    assert 'name="ids"' not in body and '<input type="hidden" name="site" value="MLA">' in body
    form = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', body))
    done = client_user.post(BULK, {key: value for key, value in form.items() if key != "csrfmiddlewaretoken"})
    assert messages_of(done) == ["3 removed."]
    assert list(MLAccount.objects.values_list("pk", flat=True)) == [keep.pk]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("q=a%20%20b", "/?q=a+b"),
        ("status=error,ERROR,paused&status=error", "/?status=error%2Cpaused"),
        ("view=cards&page=1", "/"),
        ("q=caf%C3%A9&sort=name", None),  # already clean
        ("q=a%26b%3Dc%25", None),
    ],
)
def test_the_page_redirects_once_to_the_clean_form_of_its_query(client_user, fleet, raw, clean):
    first = client_user.get(f"{OVERVIEW}?{raw}")
    if clean is None:
        assert first.status_code == 200
        return
    assert first.status_code == 302 and first["Location"] == clean
    assert client_user.get(clean).status_code == 200  # stable: no redirect loop
