"""The admin preview: a page per instance, and the "Preview upgrade to release…" action on a selection."""

import html
import re
from pathlib import Path

import pytest
from django.urls import reverse

from instances.models import PreviewRun
from instances.preview_runs import preview_run_execute
from upgrades.models import Release

from .helpers import APP_SECRET, install

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/instances/instance/"


def visible_text(page: str) -> str:
    """The page as read on screen: tags dropped (difflib marks changed characters with spans)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page)).replace("\xa0", " ")


def preview_url(instance) -> str:
    return reverse("admin:instances_instance_preview", args=[instance.pk])


def test_instance_preview_page_shows_a_side_by_side_diff(client, viewer, testbed_release, make_tenant):
    tenant = make_tenant().instance
    install(tenant)
    old_port = tenant.ports["docs"]
    tenant.ports = {**tenant.ports, "docs": old_port + 3}
    tenant.save()
    client.force_login(viewer)

    response = client.get(preview_url(tenant))

    assert response.status_code == 200
    page = response.content.decode()
    assert '<table class="diff"' in page  # difflib's side-by-side table
    assert f"DOCS_PORT={old_port + 3}" in visible_text(page) and f"DOCS_PORT={old_port}" in visible_text(page)
    assert "1 of 3 file(s) to write (values-only)." in page
    assert response.context["blocks"][0].report.preview_hash in page
    assert 'name="release"' in page and '<option value="v1.0.0" selected>' in page
    for value in tenant.get_secrets().values():
        assert value not in page


def test_preview_page_hides_secrets_in_the_html_diff(client, superuser, testbed_release, make_tenant):
    tenant = make_tenant().instance
    install(tenant)
    conf = Path(tenant.install_dir, "configs/app.conf")
    conf.write_text(conf.read_text() + f"pasted = {APP_SECRET}\n")
    client.force_login(superuser)

    page = client.get(preview_url(tenant)).content.decode()

    assert "pasted = [redacted]" in visible_text(page)
    assert APP_SECRET not in page and APP_SECRET not in visible_text(page)


def test_preview_page_explains_a_blocked_upgrade(client, viewer, testbed_release, make_tenant):
    tenant = make_tenant(is_registered=True).instance
    install(tenant)
    Path(tenant.install_dir, ".env").write_text(
        "COMPOSE_PROJECT_NAME=x\nWEB_PORT=1\nAPI_PORT=2\nDOCS_PORT=3\nAPP_SECRET=own-secret-abcdef\n"
    )
    client.force_login(viewer)
    page = client.get(preview_url(tenant)).content.decode()
    assert (
        "This tenant's .env does not define EXTRA_PORT, which the new compose file needs; "
        "the upgrade is blocked until it is added."
    ) in visible_text(page)
    assert "own-secret-abcdef" not in page


def test_preview_page_picks_another_release(client, viewer, testbed_release, make_tenant):
    Release.objects.create(version="v1.1.0", image_tag="v2", template_set="testbed", registry="127.0.0.1:5000")
    tenant = make_tenant().instance
    install(tenant)
    client.force_login(viewer)
    response = client.get(preview_url(tenant), {"release": "v1.1.0"})
    assert response.status_code == 200
    assert response.context["release"].version == "v1.1.0"
    assert "IMAGE_TAG=v2" in visible_text(response.content.decode())


def test_preview_page_shows_a_node_error_as_a_sentence(client, viewer, testbed_release, make_node, make_tenant):
    tenant = make_tenant(node=make_node(driver="ssh", address="127.0.0.1", ssh_port=1)).instance
    client.force_login(viewer)
    response = client.get(preview_url(tenant))
    assert response.status_code == 200
    assert "Cannot preview" in response.content.decode()
    assert "has neither a stored private key nor a key file" in response.content.decode()


def test_preview_page_of_an_unknown_instance_is_404(client, viewer, testbed_release):
    client.force_login(viewer)
    assert client.get(reverse("admin:instances_instance_preview", args=[999999])).status_code == 404


def test_change_page_links_to_the_preview(client, viewer, testbed_release, make_tenant):
    tenant = make_tenant().instance
    client.force_login(viewer)
    page = client.get(reverse("admin:instances_instance_change", args=[tenant.pk])).content.decode()
    assert preview_url(tenant) in page


@pytest.mark.django_db(transaction=True)
def test_preview_action_on_a_selection(client, viewer, testbed_release, make_tenant):
    first, second = make_tenant().instance, make_tenant().instance
    install(first)
    client.force_login(viewer)

    queued = client.post(CHANGELIST, {"action": "preview_release", "_selected_action": [first.pk, second.pk]})

    # The request only queues the work: the page follows the worker's progress.
    run = PreviewRun.objects.get()
    assert queued.status_code == 302 and queued.url == f"{CHANGELIST}preview-runs/{run.pk}/"
    waiting = client.get(queued.url).content.decode()
    assert "Queued: waiting for a worker to preview 2 instances." in waiting and 'http-equiv="refresh"' in waiting
    preview_run_execute(run_id=run.pk)  # what the worker's task does
    response = client.get(queued.url)
    assert response.status_code == 200
    blocks = {block.instance.slug: block for block in response.context["blocks"]}
    assert not blocks[first.slug].report.has_changes
    assert blocks[second.slug].report.has_changes  # nothing installed yet
    page = response.content.decode()
    assert f'id="preview-{first.slug}"' in page and f'id="preview-{second.slug}"' in page
    assert preview_url(first) in page
    # the release picker re-posts the selection to the same action
    assert page.count('name="_selected_action"') == 2 and 'value="preview_release"' in page


def test_preview_action_without_any_release_says_so(client, viewer, make_tenant):
    tenant = make_tenant().instance
    client.force_login(viewer)
    response = client.post(CHANGELIST, {"action": "preview_release", "_selected_action": [tenant.pk]}, follow=True)
    assert "There is no release yet" in response.content.decode()
