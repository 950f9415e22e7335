"""The upgrade screens of the admin: the two intermediate pages, the Upgrade page, cancel."""

import pytest
from django.utils import timezone

from instances.models import PreviewRun
from instances.operations.models import OperationStep
from instances.preview_runs import preview_run_execute
from upgrades.choices import UpgradeStatus
from upgrades.models import Release, Upgrade

pytestmark = pytest.mark.django_db


def post_action(client, action: str, instances, **data):
    return client.post(
        "/admin/instances/instance/", {"action": action, "_selected_action": [i.pk for i in instances], **data}
    )


def test_quick_upgrade_page_then_confirm_starts_one_upgrade_per_instance(client, operator, make_instance):
    a, b = make_instance(), make_instance()
    client.force_login(operator)
    page = post_action(client, "quick_upgrade", [a, b])
    assert page.status_code == 200
    assert a.slug in page.content.decode() and "Target image tag" in page.content.decode()

    bad = post_action(client, "quick_upgrade", [a, b], post="yes", image_tag="-nope")
    assert bad.status_code == 200 and "is not a valid image tag" in bad.content.decode()
    assert not Upgrade.objects.exists()

    done = post_action(client, "quick_upgrade", [a, b], post="yes", image_tag="v2")
    assert done.status_code == 302
    assert sorted(Upgrade.objects.values_list("instance__slug", "target_tag")) == sorted(
        [(a.slug, "v2"), (b.slug, "v2")]
    )

    again = post_action(client, "quick_upgrade", [a], post="yes", image_tag="v3")
    messages = [str(m) for m in again.wsgi_request._messages]
    assert any("is busy" in m for m in messages)


def test_viewer_does_not_get_the_upgrade_actions(client, viewer, make_instance):
    make_instance()
    client.force_login(viewer)
    page = client.get("/admin/instances/instance/").content.decode()
    assert "quick_upgrade" not in page and "upgrade_to_release" not in page


@pytest.mark.django_db(transaction=True)
def test_upgrade_to_release_page_shows_the_diff_and_blocks_a_coverage_gap(
    client, operator, make_node, make_instance, tmp_path
):
    Release.objects.create(version="v1", image_tag="v1", template_set="testbed", is_default=True)
    node = make_node(driver="local")
    ok = make_instance(
        node=node, install_dir=str(tmp_path / "ok"), ports={"web": 31001, "api": 31002, "docs": 31003, "extra": 31004}
    )
    gap = make_instance(
        node=node,
        install_dir=str(tmp_path / "gap"),
        is_registered=True,
        ports={"web": 31011, "api": 31012, "docs": 31013, "extra": 31014},
    )
    (tmp_path / "gap").mkdir()
    (tmp_path / "gap" / ".env").write_text("COMPOSE_PROJECT_NAME=gap\nWEB_PORT=31011\n")
    client.force_login(operator)

    queued = post_action(client, "upgrade_to_release", [ok, gap])
    run = PreviewRun.objects.get()
    assert queued.status_code == 302 and queued.url.endswith(f"/upgrade-to-release/{run.pk}/")
    assert "Queued" in client.get(queued.url).content.decode()
    preview_run_execute(run_id=run.pk)  # what the worker's task does
    page = client.get(queued.url).content.decode()

    assert f'name="approve_{ok.pk}"' in page and f'name="approve_{gap.pk}"' not in page
    assert "Blocked:" in page and "API_PORT" in page
    assert "docker-compose.yml" in page and 'class="diff"' in page
    for value in ok.get_secrets().values():
        assert value not in page

    approve = page.split(f'name="approve_{ok.pk}" value="')[1].split('"')[0]
    done = post_action(
        client, "upgrade_to_release", [ok, gap], post="yes", release_version="v1", **{f"approve_{ok.pk}": approve}
    )
    assert done.status_code == 302
    upgrade = Upgrade.objects.get()
    assert upgrade.instance == ok and upgrade.approved_preview_hash == approve and upgrade.release.version == "v1"


def test_upgrade_page_shows_steps_polls_while_running_and_cancels(client, operator, make_instance):
    upgrade = Upgrade.objects.create(
        instance=make_instance(),
        mode="image_only",
        target_tag="v2",
        to_version="v2",
        status=UpgradeStatus.RUNNING,
        started_at=timezone.now(),
    )
    OperationStep.objects.create(
        kind="upgrade",
        operation_id=upgrade.pk,
        position=1,
        key="precheck",
        name="precheck",
        status="succeeded",
        started_at=timezone.now(),
        finished_at=timezone.now(),
        output="docker 20.10",
    )
    client.force_login(operator)
    page = client.get(f"/admin/upgrades/upgrade/{upgrade.pk}/change/").content.decode()
    assert "precheck" in page and "docker 20.10" in page
    # The steps are on the page, and kept current by polling the progress endpoint (no page reload).
    assert 'http-equiv="refresh"' not in page and "Cancel this upgrade" in page
    assert f'data-url="/api/v1/upgrades/{upgrade.pk}/progress/"' in page and 'data-final="false"' in page

    client.post(f"/admin/upgrades/upgrade/{upgrade.pk}/cancel/")
    upgrade.refresh_from_db()
    assert upgrade.cancel_requested

    upgrade.status = UpgradeStatus.SUCCEEDED
    upgrade.save()
    page = client.get(f"/admin/upgrades/upgrade/{upgrade.pk}/change/").content.decode()
    assert 'data-final="true"' in page and "Cancel this upgrade" not in page
