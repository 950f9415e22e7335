"""Create the first admin user if there is no superuser yet (used by `make run`)."""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from instances.secrets import generate_secret


class Command(BaseCommand):
    help = "Create user 'admin' (password from CCP_ADMIN_PASSWORD, or generated and printed once)."

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        password = os.environ.get("CCP_ADMIN_PASSWORD") or generate_secret(20)
        User.objects.create_superuser("admin", email="", password=password)
        shown = "from CCP_ADMIN_PASSWORD" if os.environ.get("CCP_ADMIN_PASSWORD") else password
        self.stdout.write(
            self.style.SUCCESS(
                f"Created admin user 'admin' with password: {shown}\n"
                "This is shown once; change it in the admin under Users."
            )
        )
