"""Issue 16 end to end with a real Celery worker: a grant dies at the sandbox, one sync later an
email with a reconnect link is in the mailbox, and the link brings the account back.

The worker is a subprocess on Redis and the test PostgreSQL (tests/sync/test_worker.py's
harness) that sends email over real SMTP (EMAIL_URL) to a sink in this process. The store's
owner opens the link in a fresh browser session (no login here), authorizes at the sandbox's
authorization page as the same seller, and the callback restores the account.
"""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.mercadolivre.sandbox import DEMO_SELLERS
from accounts.models import AlertDelivery, AuditEntry, MLAccount, ReconnectLink
from sync import tasks
from sync.harness import wait_for
from tests import sandbox_oauth
from tests.smtp_sink import SMTPSink
from tests.sync.test_worker import connected, queue_name, sandbox, start_worker  # noqa: F401

pytestmark = [
    pytest.mark.worker,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
]

SITE = "http://testserver"
SELLER = DEMO_SELLERS[1]


@pytest.fixture
def app_at_sandbox(settings, sandbox):  # noqa: F811
    """This process (the web side of the test) talks to the worker's sandbox, like make run."""
    sandbox_oauth.point_at(settings, sandbox)
    settings.SITE_URL = SITE
    return settings


def test_a_dead_grant_emails_a_reconnect_link_that_brings_the_account_back(
    app_at_sandbox,
    start_worker,  # noqa: F811
    connected,  # noqa: F811
    sandbox,  # noqa: F811
    user,
):
    with SMTPSink() as mailbox:
        worker = start_worker(EMAIL_URL=mailbox.url, SITE_URL=SITE, LANGUAGE_CODE="en")
        account = connected(SELLER.id)
        sandbox.state.revoke(SELLER.id)  # the seller revoked the app at Mercado Livre

        worker.send(tasks.sync_account, str(account.pk))  # one sync

        wait_for(lambda: mailbox.messages, timeout=30, what="the alert email")
        account.refresh_from_db()
        assert account.status == "expired"
        [message] = mailbox.messages
        assert message["X-Sink-Recipients"] == user.email
        body = message.get_content()
        assert account.account_name in body
        [link] = re.findall(re.escape(SITE) + r"(/reconnect/[A-Za-z0-9_-]+/)", body)
        assert ReconnectLink.objects.filter(account=account, used_at__isnull=True).count() == 1
        assert AlertDelivery.objects.get(user=user).email == "sent"

    owner = Client()  # the store's owner: no session, no login here
    page = owner.get(link)
    assert page.status_code == 200 and account.nickname in page.content.decode()
    start = owner.post(link)
    assert start.status_code == 302 and start["Location"].startswith(sandbox.url)

    back = owner.get(sandbox_oauth.CALLBACK, sandbox_oauth.authorize(start["Location"], SELLER.id))

    assert back.status_code == 200, back.content[:500]
    account.refresh_from_db()
    assert account.status == "active"
    assert account.ml_user_id == SELLER.id
    assert ReconnectLink.objects.get(account=account).used_at is not None
    assert AuditEntry.objects.filter(account_id=account.pk, action="reconnect").exists()
    # and the link is spent
    assert owner.post(link).status_code == 410
    assert MLAccount.objects.get(pk=account.pk).status == "active"
