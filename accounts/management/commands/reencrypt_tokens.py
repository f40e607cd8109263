"""Re-encrypt every stored token with the current key: the last step of a key rotation.

Rotation: put the new key first and keep the old one after it (SECRET_KEY=new,old and/or
SALT_KEY=new,old), deploy, run this command, then drop the old key.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import MLAccount


class Command(BaseCommand):
    help = "Re-encrypt all Mercado Livre tokens with the first SECRET_KEY/SALT_KEY."

    def handle(self, *args, **options):
        done = 0
        for pk in MLAccount.objects.order_by("pk").values_list("pk", flat=True).iterator():
            # Row by row under a lock: a token refresh running at the same time must not be
            # overwritten with the pair we read before it.
            with transaction.atomic():
                account = (
                    MLAccount.objects.select_for_update().only(*MLAccount.SECRET_FIELDS).filter(pk=pk).first()
                )
                if account is None:
                    continue
                account.save(update_fields=list(MLAccount.SECRET_FIELDS))
            done += 1
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted the tokens of {done} account(s)."))
