"""Create the demo login and connect a few sandbox sellers to it (idempotent).

Runs on every `make run`. Only in sandbox mode: with a real Mercado Livre application
there are no demo sellers to connect. Each seller's first sync is queued here, like any
connect's (sync.ondemand.sync_connected), so the dashboard shows their numbers a few
seconds after the worker starts rather than at beat's first dispatch a minute later. The
worker waits for the sandbox before it takes them (mlaccounts/celery.py). It lives in
mlaccounts, not accounts, because it queues syncs: accounts never imports sync.
"""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts import services
from accounts.mercadolivre import sandbox
from accounts.mercadolivre.oauth import parse_token_response
from accounts.models import User
from sync import ondemand

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password-123"  # noqa: S105 - printed on the console on purpose
DEMO_SELLERS = 3


class Command(BaseCommand):
    help = "Create the demo login and connect sandbox demo sellers to it."

    def handle(self, *args, **options):
        if not settings.ML_SANDBOX:
            self.stdout.write("ML_CLIENT_ID is set: not in sandbox mode, no demo data created.")
            return
        with transaction.atomic():
            user = User.objects.filter(email__iexact=DEMO_EMAIL).first()
            if user is None:
                user = User.objects.create_user(
                    DEMO_EMAIL, DEMO_PASSWORD, first_name="Demo", last_name="Seller"
                )
        workspace = services.workspace_personal(user=user)
        for seller in sandbox.DEMO_SELLERS[:DEMO_SELLERS]:
            # A fresh grant on every run: the sandbox's state file may have been reset, and
            # a new authorization is what a real seller reconnecting would do.
            token_set = parse_token_response(
                sandbox.mint_into_state_file(settings.ML_SANDBOX_STATE_FILE, seller.id)
            )
            account, _created = services.mlaccount_connect(
                workspace=workspace,
                connected_by=user,
                # A grant just minted: the only valid pair, kept even where another workspace
                # has this seller (mercadolivre-api.md §1.5).
                fresh_grant=True,
                ml_user_id=seller.id,
                nickname=seller.nickname,
                email=seller.email,
                site_id=seller.site_id,
                access_token=token_set.access_token,
                refresh_token=token_set.refresh_token,
                token_expires_at=token_set.expires_at,
                scopes=" ".join(token_set.scopes),
            )
            ondemand.sync_connected(account=account)
        self.stdout.write(
            self.style.SUCCESS(f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD} ({DEMO_SELLERS} sandbox sellers)")
        )
