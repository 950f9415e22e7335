"""Re-encrypt every stored secret under the first key of CCP_ENCRYPTION_KEYS.

Key rotation: put the new key first (keep the old ones after it), run this, then drop the old keys.
"""

from django.core.management.base import BaseCommand

from instances.secrets_rotation import rotate_all_secrets


class Command(BaseCommand):
    help = "Re-encrypt every stored secret (instance secrets, node keys) under the first encryption key."

    def handle(self, *args, **options) -> None:
        counts = rotate_all_secrets()
        for label, count in counts.items():
            self.stdout.write(f"{label}: {count} re-encrypted")
        self.stdout.write(self.style.SUCCESS("Done. Keys other than the first can now be removed."))
