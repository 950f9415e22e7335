"""Create the first admin user if there is no superuser yet (used by `make run`), and say how to sign in.

A generated password is printed and kept in var/admin-password (mode 0600) so the last line of `make run`
can repeat it after the server logs (`ensure_admin --announce`, a Procfile process). Reset it with
`python manage.py changepassword admin`.
"""

import os
import signal
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from instances.secrets import generate_secret

RESET_HINT = "Forgot it? python manage.py changepassword admin"


def password_file():
    return settings.VAR_DIR / "admin-password"


def keep_password(password: str) -> None:
    path = password_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(password + "\n")
    os.chmod(path, 0o600)


class Command(BaseCommand):
    help = "Create user 'admin' (password from CCP_ADMIN_PASSWORD, or generated, printed and kept in var/)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--announce",
            action="store_true",
            help="Wait a few seconds, print how to sign in (last, after the servers' start-up logs), then wait.",
        )
        parser.add_argument("--after", type=float, default=6.0, help="Seconds to wait before announcing.")

    def handle(self, *args, announce: bool = False, after: float = 6.0, **options) -> None:
        if announce:
            time.sleep(after)
            self.stdout.write(self.style.SUCCESS(self.sign_in_text()))
            self.stdout.flush()
            signal.pause()  # honcho stops every process when one exits: stay until Ctrl-C
            return
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        password = os.environ.get("CCP_ADMIN_PASSWORD") or generate_secret(20)
        User.objects.create_superuser("admin", email="", password=password)
        if os.environ.get("CCP_ADMIN_PASSWORD"):
            self.stdout.write(
                self.style.SUCCESS("Created admin user 'admin' with the password from CCP_ADMIN_PASSWORD.")
            )
            return
        keep_password(password)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created admin user 'admin' with password: {password} (kept in {password_file()}, 0600)"
            )
        )

    def sign_in_text(self) -> str:
        url = f"http://{os.environ.get('CCP_BIND', '127.0.0.1')}:{os.environ.get('CCP_PORT', '8000')}/admin/"
        path = password_file()
        kept = path.read_text().strip() if path.exists() else ""
        admin = get_user_model().objects.filter(username="admin").first()
        if kept and admin is not None and admin.check_password(kept):  # not once it has been changed
            secret = f"password {kept} (kept in {path}, mode 0600)"
        else:
            secret = "the password you set (CCP_ADMIN_PASSWORD or later)"
        return f"CCP is ready: {url} — sign in as admin with {secret}. {RESET_HINT}"
