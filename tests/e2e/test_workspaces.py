"""A shared workspace, in a real browser: its owner invites an operator and a viewer from the
members page; each opens the emailed link signed out, signs up, accepts, and sees what their
role allows (the operator syncs; the viewer only reads, and a forced pause is refused).

Screenshots of the members page in Portuguese (the default) on a desktop and on a 390 px
phone land in test-artifacts/screenshots/ for a reviewer to look at.
"""

import re

import pytest
from django.conf import settings
from django.core import mail
from django.utils import translation
from django.utils.translation import gettext
from playwright.sync_api import expect

from accounts.models import Membership, MLAccount, Role, User
from sync import tasks
from tests.factories import MLAccountFactory, UserFactory, WorkspaceFactory, member

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OWNER_PASSWORD = "correct horse battery staple"  # tests/factories.py
PASSWORD = "a-Long-and-unusual-passphrase-42"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
LINK = re.compile(r"\S+/invitations/[^/\s]+/")


def pt_br(message, **values):
    """`message` as the pt-BR dashboard shows it (whatever the catalog has translated yet)."""
    with translation.override("pt-br"):
        return gettext(message) % values if values else gettext(message)


def role_label(role):
    with translation.override("pt-br"):
        return str(Role(role).label)


@pytest.fixture
def held_syncs(monkeypatch):
    """No worker runs here: "Sync now" queues its task into this list instead of the broker."""
    held = []
    monkeypatch.setattr(
        tasks.sync_account, "apply_async", lambda args=(), kwargs=None, **o: held.append(args)
    )
    return held


def card(page, account):
    return page.locator(f"#account-{account.pk}")


def sign_in(page, base, email, password):
    page.goto(base + "/accounts/login/")
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill(password)
    page.locator("form.auth-form button[type=submit]").click()
    expect(page).to_have_url(base + "/")


def invite(page, base, workspace, email, role, accounts=None):
    """Send an invitation through the members page's form; the link from the email sent."""
    sent_before = len(mail.outbox)
    page.locator("#id_email").fill(email)
    page.locator("#id_role").select_option(role)
    if accounts is None:
        page.locator("input[name=scope][value=all]").check()
    else:
        page.locator("input[name=scope][value=chosen]").check()
        for account in accounts:
            page.locator(f"input[name=accounts][value='{account.pk}']").check()
    page.locator("#send-invitation").click()
    expect(page).to_have_url(f"{base}/workspaces/{workspace.pk}/members/")
    expect(page.locator("#messages .message-success")).to_contain_text(email)
    expect(page.locator(".invitation-list")).to_contain_text(email)

    # The live server is a thread of this process: the locmem backend's outbox is this one.
    sent = [m for m in mail.outbox[sent_before:] if "/invitations/" in m.body]
    assert len(sent) == 1, [m.subject for m in mail.outbox]
    assert sent[0].to == [email]
    assert sent[0].subject.startswith(settings.ACCOUNT_EMAIL_SUBJECT_PREFIX)
    links = LINK.findall(sent[0].body)
    assert len(links) == 1, sent[0].body
    assert links[0].startswith(base + "/invitations/"), links[0]  # absolute: the email leaves the site
    return links[0]


def sign_up_and_accept(page, base, link, email):
    """Open the invitation signed out, sign up with the invited address, come back, accept."""
    page.goto(link)
    expect(page.locator("#invitation-title")).to_be_visible()
    expect(page.locator("#accept-invitation")).to_have_count(0)
    page.locator("#invitation-sign-up").click()
    expect(page).to_have_url(re.compile(r"/accounts/signup/\?next="))
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password1]").fill(PASSWORD)
    page.locator("input[name=password2]").fill(PASSWORD)
    page.locator("form.auth-form button[type=submit]").click()
    # Back on the invitation's page (the ?next), signed in with the invited address.
    expect(page).to_have_url(link)
    page.locator("#accept-invitation").click()
    expect(page).to_have_url(base + "/")
    expect(page.locator("#messages .message-success")).to_be_visible()
    return User.objects.get(email=email)


def post_from_page(page, path, data=None):
    """A POST the page's own buttons would not send: fetch() with the page's CSRF token."""
    return page.evaluate(
        """async ([path, data]) => {
            const token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
            const body = new URLSearchParams({...data, csrfmiddlewaretoken: token});
            const response = await fetch(path, {
                method: "POST", body, credentials: "same-origin", headers: {"X-CSRFToken": token},
            });
            return {status: response.status, url: response.url, text: await response.text()};
        }""",
        [path, data or {}],
    )


def test_owner_invites_an_operator_and_a_viewer(
    e2e_settings, live_server, open_page, screenshot_dir, held_syncs
):
    base = live_server.url
    assert settings.EMAIL_BACKEND == "django.core.mail.backends.locmem.EmailBackend"

    owner = UserFactory(email="owner@example.com", first_name="Olga", last_name="Dona")
    shared = WorkspaceFactory(name="Agência Norte")
    member(shared, owner, Role.OWNER)
    ana = MLAccountFactory(workspace=shared, owner=owner, nickname="CASA_DA_ANA", account_name="Casa da Ana")
    mega = MLAccountFactory(workspace=shared, owner=owner, nickname="MEGASTORE_BR", account_name="Megastore")

    # The owner signs in and switches the header's switcher to the shared workspace.
    owner_page = open_page(DESKTOP)
    sign_in(owner_page, base, owner.email, OWNER_PASSWORD)
    owner_page.locator("#workspace-select").select_option(str(shared.pk))
    members_link = owner_page.locator(f"header a[href='/workspaces/{shared.pk}/members/']")
    expect(members_link).to_be_visible()
    expect(card(owner_page, ana)).to_be_visible()
    owner.refresh_from_db()
    assert owner.current_workspace_id == shared.pk
    members_link.click()
    expect(owner_page).to_have_url(f"{base}/workspaces/{shared.pk}/members/")
    expect(owner_page.locator("html")).to_have_attribute("lang", "pt-br")
    expect(owner_page.locator(".member-card")).to_have_count(1)

    # Two invitations: the operator for every account, the viewer for Casa da Ana only.
    ops_link = invite(owner_page, base, shared, "ops@example.com", "operator")
    viewer_link = invite(owner_page, base, shared, "viewer@example.com", "viewer", accounts=[ana])
    assert ops_link != viewer_link
    expect(owner_page.locator(".invitation-list li")).to_have_count(2)

    # The operator, in a browser of their own: sign up from the link, accept.
    ops_page = open_page(DESKTOP)
    ops = sign_up_and_accept(ops_page, base, ops_link, "ops@example.com")
    membership = Membership.objects.get(workspace=shared, user=ops)
    assert membership.role == Role.OPERATOR and not membership.scoped
    expect(ops_page.locator("#workspace-select")).to_have_value(str(shared.pk))
    expect(card(ops_page, ana)).to_be_visible()
    expect(card(ops_page, mega)).to_be_visible()
    expect(ops_page.locator(f"#role-{ana.pk}")).to_have_text(role_label(Role.OPERATOR))
    expect(ops_page.locator(f"#sync-{ana.pk}")).to_be_visible()
    expect(ops_page.locator(f"#toggle-{ana.pk}")).to_have_count(0)
    expect(ops_page.locator(f"#toggle-{mega.pk}")).to_have_count(0)
    expect(ops_page.locator(f"header a[href='/workspaces/{shared.pk}/members/']")).to_have_count(0)
    # Sync now works for an operator: queued, and said so.
    ops_page.locator(f"#sync-{ana.pk}").click()
    expect(ops_page.locator(f"#notice-{ana.pk}")).to_contain_text(
        pt_br("Sync queued for %(name)s.", name="Casa da Ana")
    )
    assert held_syncs == [(str(ana.pk),)]

    # The viewer: sign up, accept, see Casa da Ana only, and no buttons that change anything.
    viewer_page = open_page(DESKTOP)
    viewer = sign_up_and_accept(viewer_page, base, viewer_link, "viewer@example.com")
    membership = Membership.objects.get(workspace=shared, user=viewer)
    assert membership.role == Role.VIEWER and membership.scoped
    assert list(membership.scope.values_list("account_id", flat=True)) == [ana.pk]
    expect(viewer_page.locator("#workspace-select")).to_have_value(str(shared.pk))
    expect(card(viewer_page, ana)).to_be_visible()
    expect(card(viewer_page, mega)).to_have_count(0)
    expect(viewer_page.locator(f"#role-{ana.pk}")).to_have_text(role_label(Role.VIEWER))
    expect(viewer_page.locator(f"#sync-{ana.pk}")).to_have_count(0)
    expect(viewer_page.locator(f"#toggle-{ana.pk}")).to_have_count(0)

    # A pause forced from the viewer's page is refused (403, and not a CSRF refusal: the
    # same request shape goes through for a POST the viewer may send).
    allowed = post_from_page(viewer_page, "/workspaces/switch/", {"workspace": str(shared.pk)})
    assert allowed["status"] == 200 and allowed["url"] == base + "/", allowed["status"]
    refused = post_from_page(viewer_page, f"/ml-accounts/{ana.pk}/pause/")
    assert refused["status"] == 403
    assert pt_br("Please try again") not in refused["text"]
    ana.refresh_from_db()
    assert ana.status == MLAccount.Status.ACTIVE and ana.sync_enabled
    viewer_page.reload()
    expect(card(viewer_page, ana).locator(".status")).to_have_text(pt_br("Active"))

    # The owner's members page now lists the three of them: screenshots, desktop and phone.
    owner_page.reload()
    expect(owner_page.locator(".member-card")).to_have_count(3)
    expect(owner_page.locator(f"#member-{viewer.pk}")).to_contain_text("Casa da Ana")
    expect(owner_page.locator(".invitation-list li")).to_have_count(0)
    owner_page.screenshot(path=str(screenshot_dir / "members-pt-br.png"), full_page=True)

    phone_page = open_page(PHONE)
    sign_in(phone_page, base, owner.email, OWNER_PASSWORD)
    phone_page.goto(f"{base}/workspaces/{shared.pk}/members/")
    expect(phone_page.locator(".member-card")).to_have_count(3)
    expect(phone_page.locator("html")).to_have_attribute("lang", "pt-br")
    phone_page.screenshot(path=str(screenshot_dir / "members-phone.png"), full_page=True)
    # Nothing sticks out sideways on a phone.
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    for page in (owner_page, ops_page, viewer_page, phone_page):
        assert page.csp_violations == []
