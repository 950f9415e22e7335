"""The operator's journey in a real browser (issue 13), as one test: every page an operator uses, in order,
on the testbed's real node, with a real Celery worker doing the work behind the pages."""

import uuid
from pathlib import Path

import pytest
from django.contrib.auth.models import User

pytestmark = [pytest.mark.testbed, pytest.mark.django_db(transaction=True)]


def log_in(browser, username: str, password: str) -> None:
    browser.get("/admin/login/")
    browser.fill("username", username)
    browser.fill("password", password)
    browser.click('input[type="submit"]')
    browser.wait_text("Fleet")


def test_the_operators_journey(browser, ssh_node, docker_engine, celery_worker_thread, node_workdir, testbed_release):
    User.objects.create_superuser("ops", password="journey-pw")
    log_in(browser, "ops", "journey-pw")

    # Add a node: paste its key, check it.
    name = f"web-{uuid.uuid4().hex[:6]}"
    browser.get("/admin/instances/node/add/")
    browser.fill("name", name)
    browser.fill("address", ssh_node.host)
    browser.fill("ssh_port", str(ssh_node.port))
    browser.fill("ssh_user", ssh_node.user)
    browser.fill("instance_root", str(node_workdir))
    browser.fill("private_key", Path(ssh_node.key_path).read_text())
    browser.click('input[name="_save"]')
    browser.wait_text("was added successfully")
