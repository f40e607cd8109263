"""Re-encrypt every stored secret with the current key: the last step of a key rotation.

Rotation: put the new key first and keep the old one after it (SECRET_KEY=new,old and/or
SALT_KEY=new,old), deploy, run this command, then drop the old key. Secrets are the token
pairs of the accounts and the PKCE verifiers of pending authorizations (OAuthState).
"""

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import MLAccount, OAuthState
from accounts.tokens import refresh_lease_seconds


def _reencrypt_account(pk) -> bool:
    """Rewrite one account's tokens; False if a token refresh holds its lease right now."""
    # Row by row under a lock: a connect or reconnect at the same time must not be
    # overwritten with the pair we read before it.
    with transaction.atomic():
        account = (
            MLAccount.objects.select_for_update()
            .only(*MLAccount.SECRET_FIELDS, "refresh_lease_until")
            .filter(pk=pk)
            .first()
        )
        if account is None:
            return True
        # A refresh in flight saves its new pair only if the stored refresh token is still
        # the one it spent (compared as ciphertext): rewriting it now would make that save
        # fail after ML already rotated the token, so wait until the lease is given back.
        if account.refresh_lease_until and account.refresh_lease_until >= timezone.now():
            return False
        account.save(update_fields=list(MLAccount.SECRET_FIELDS))
    return True


def _reencrypt_state(pk) -> None:
    with transaction.atomic():
        state = OAuthState.objects.select_for_update().only("code_verifier").filter(pk=pk).first()
        if state is not None:  # completed or purged meanwhile
            state.save(update_fields=["code_verifier"])


class Command(BaseCommand):
    help = "Re-encrypt all Mercado Livre tokens and PKCE verifiers with the first SECRET_KEY/SALT_KEY."

    def handle(self, *args, **options):
        pks = list(MLAccount.objects.order_by("pk").values_list("pk", flat=True))
        busy = [pk for pk in pks if not _reencrypt_account(pk)]
        # Accounts renewing their token: a refresh holds its lease for at most this long.
        give_up = time.monotonic() + refresh_lease_seconds()
        while busy and time.monotonic() < give_up:
            time.sleep(0.5)
            busy = [pk for pk in busy if not _reencrypt_account(pk)]
        accounts = len(pks) - len(busy)
        states = 0
        for pk in OAuthState.objects.order_by("pk").values_list("pk", flat=True).iterator():
            _reencrypt_state(pk)
            states += 1
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-encrypted the tokens of {accounts} account(s) and {states} pending authorization(s)."
            )
        )
        if busy:
            raise CommandError(f"{len(busy)} account(s) kept renewing their token; run the command again.")
