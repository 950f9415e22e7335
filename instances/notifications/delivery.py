"""Sending one message through apprise, and keeping its URL out of everything we keep or print.

apprise logs what it does (at debug level, the URL itself) to its own logger; settings.LOGGING stops that
logger from reaching the console, and a delivery captures its warnings only to store them, redacted.
"""

import logging
import smtplib
import threading
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email

from instances.redaction import redact

# apprise's log capture hooks its one global logger: one send at a time per process keeps each
# delivery's error its own. Notifications are few; a send waits a few seconds at most.
_send_lock = threading.Lock()
# Not an apprise service: e-mail through the panel's own Django e-mail backend (EMAIL_URL), to the
# addresses after the scheme, comma-separated: djangomail://ops@example.org,oncall@example.org
DJANGO_MAIL = "djangomail://"
# URL parts shorter than this are not worth hiding (and would mangle every message: "to", "80").
MIN_SECRET_PART = 3


def url_secret_parts(url: str) -> list[str]:
    """The URL and every part of it that may be a credential: user, password, host (Slack's and others'
    first token), path segments and query values. Longest first."""
    parts = {url}
    try:
        split = urlsplit(url)
        parts |= {split.username or "", split.password or "", split.hostname or "", split.netloc, split.path}
        parts |= set(split.path.split("/"))
        parts |= {value for _, value in parse_qsl(split.query)}
    except ValueError:
        pass
    return sorted({p for p in parts if len(p) >= MIN_SECRET_PART}, key=len, reverse=True)


def hide_url(text: str, url: str) -> str:
    return redact(text, url_secret_parts(url))


def django_mail_recipients(url: str) -> list[str]:
    return [unquote(address).strip() for address in url[len(DJANGO_MAIL) :].split(",") if address.strip()]


def url_problem(url: str) -> str:
    """Why apprise cannot use `url` (a sentence without the URL), or "" when it can."""
    if url.strip().lower().startswith(DJANGO_MAIL):
        recipients = django_mail_recipients(url.strip())
        try:
            for address in recipients:
                validate_email(address)
        except ValidationError:
            return "A djangomail:// URL names e-mail addresses, comma-separated: djangomail://ops@example.org."
        return "" if recipients else "A djangomail:// URL needs at least one e-mail address."
    with _send_lock, apprise.LogCapture(level=logging.WARNING, fmt="%(message)s"):
        plugin = apprise.Apprise.instantiate(url.strip())
    if plugin is None:
        return (
            "apprise does not understand this URL: check its scheme and parts against apprise's list of "
            "services (e.g. json://host/path, mailto://user:password@host, slack://TokenA/TokenB/TokenC)."
        )
    return ""


def send(url: str, *, title: str, body: str) -> str:
    """Send one message; "" when the service took it, otherwise the reason (with the URL's parts hidden)."""
    problem = url_problem(url)
    if problem:
        return problem
    if url.strip().lower().startswith(DJANGO_MAIL):
        return _send_django_mail(django_mail_recipients(url.strip()), title=title, body=body)
    notifier = apprise.Apprise()
    notifier.add(url)
    with _send_lock, apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
        try:
            ok = notifier.notify(title=title, body=body)
        except Exception as exc:  # noqa: BLE001 - a plugin's own bug must end as a recorded failure
            return hide_url(f"apprise failed: {type(exc).__name__}: {exc}", url)
    if ok:
        return ""
    detail = " ".join(line.strip() for line in captured.getvalue().splitlines() if line.strip())
    return hide_url(detail or "The service did not accept the message.", url)[:2000]


def _send_django_mail(recipients: list[str], *, title: str, body: str) -> str:
    """Through Django's e-mail backend (EMAIL_URL): the same SMTP server the panel uses for anything else."""
    try:
        send_mail(subject=title, message=body, from_email=None, recipient_list=recipients, fail_silently=False)
    except (smtplib.SMTPException, OSError) as exc:
        return f"The e-mail could not be sent through EMAIL_URL's server: {type(exc).__name__}: {exc}"
    return ""
