"""Fixtures of the notification tests: real receivers, targets, and a real Celery worker."""

import pytest
from celery.contrib.testing.worker import start_worker
from django.contrib.contenttypes.models import ContentType

from ccp.celery import app
from instances.notifications.models import NotificationTarget
from instances.notifications.services import notification_target_save

from .receivers import SMTPServer, Webhook, free_port


@pytest.fixture
def webhook():
    hook = Webhook(port=free_port()).start()
    yield hook
    hook.stop()


@pytest.fixture
def smtp_server():
    server = SMTPServer(port=free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def make_target(db):
    def make(url: str, events: list[str] | None = None, name: str = "", **fields) -> NotificationTarget:
        target = NotificationTarget(name=name or f"target-{NotificationTarget.objects.count() + 1}", **fields)
        if events is not None:
            target.events = events
        return notification_target_save(target=target, url=url)

    return make


@pytest.fixture
def quick_retries(settings):
    settings.CCP_NOTIFY_MAX_ATTEMPTS = 2
    settings.CCP_NOTIFY_RETRY_SECONDS = 0.2


@pytest.fixture
def celery_worker_thread(transactional_db):
    """A real Celery worker (a thread of this process) consuming from the configured broker."""
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=60) as worker:
        yield worker


@pytest.fixture(autouse=True)
def fresh_content_types():
    """A transactional test's flush recreates the content types under new ids; the audit log must not
    use the ids Django cached before it."""
    ContentType.objects.clear_cache()
    yield
    ContentType.objects.clear_cache()
