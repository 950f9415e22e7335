"""The upgrade API: 202 with the upgrade's URL, 409 for a second request on a busy instance, cancel."""

import threading

import pytest
from django.db import connection

from instances.operations.models import OperationStep
from upgrades.choices import UpgradeStatus
from upgrades.models import Upgrade

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_requests_at_the_same_moment_one_runs_the_other_gets_409(api, operator, make_instance):
    instance = make_instance()
    barrier = threading.Barrier(2)
    answers = []
    client = api(operator)

    def post() -> None:
        try:
            barrier.wait()
            answers.append(
                client.post(
                    f"/api/v1/instances/{instance.slug}/upgrades/",
                    {"mode": "image_only", "image_tag": "v2"},
                    format="json",
                )
            )
        finally:
            connection.close()  # each thread has its own database connection

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)

    assert sorted(r.status_code for r in answers) == [202, 409]
    accepted = next(r for r in answers if r.status_code == 202).json()
    refused = next(r for r in answers if r.status_code == 409).json()
    assert accepted["url"].endswith(f"/api/v1/upgrades/{accepted['id']}/")
    assert f"upgrade #{accepted['id']}" in refused["detail"] and "is busy" in refused["detail"]
    assert Upgrade.objects.filter(instance=instance).count() == 1


def test_viewer_cannot_start_an_upgrade_and_bad_input_is_400(api, viewer, operator, make_instance):
    instance = make_instance()
    url = f"/api/v1/instances/{instance.slug}/upgrades/"
    assert api(viewer).post(url, {"mode": "image_only", "image_tag": "v2"}, format="json").status_code == 403
    bad = api(operator).post(url, {"mode": "image_only", "image_tag": "-bad"}, format="json")
    assert bad.status_code == 400 and "image_tag" in bad.json()
    no_preview = api(operator).post(url, {"mode": "release"}, format="json")
    assert no_preview.status_code == 400 and "release" in no_preview.json()


def test_cancel_a_pending_upgrade_releases_the_instance(api, operator, make_instance):
    instance = make_instance()
    client = api(operator)
    started = client.post(
        f"/api/v1/instances/{instance.slug}/upgrades/", {"mode": "image_only", "image_tag": "v2"}, format="json"
    ).json()
    cancelled = client.post(f"/api/v1/upgrades/{started['id']}/cancel/")
    assert cancelled.status_code == 202 and cancelled.json()["status"] == UpgradeStatus.CANCELLED
    again = client.post(
        f"/api/v1/instances/{instance.slug}/upgrades/", {"mode": "image_only", "image_tag": "v3"}, format="json"
    )
    assert again.status_code == 202


def test_upgrade_list_filters_and_detail_shows_steps(api, viewer, operator, make_instance):
    a, b = make_instance(), make_instance()
    client = api(operator)
    for instance in (a, b):
        started = client.post(
            f"/api/v1/instances/{instance.slug}/upgrades/", {"mode": "image_only", "image_tag": "v2"}, format="json"
        ).json()
        client.post(f"/api/v1/upgrades/{started['id']}/cancel/")
    rows = api(viewer).get(f"/api/v1/upgrades/?instance={a.slug}&status=cancelled&mode=image_only").json()
    assert [r["instance"] for r in rows["results"]] == [a.slug]
    detail = api(viewer).get(rows["results"][0]["url"]).json()
    assert detail["steps"] == [] and detail["to_version"] == "v2"


def test_accepted_answers_carry_a_plain_str_location_that_wsgi_servers_accept(api, operator, make_instance):
    from wsgiref.headers import Headers

    instance = make_instance()
    response = api(operator).post(
        f"/api/v1/instances/{instance.slug}/upgrades/", {"mode": "image_only", "image_tag": "v2"}, format="json"
    )
    assert response.status_code == 202
    Headers(list(response.items()))  # raises on a header value that is not exactly a str
    assert response["Location"] == response.json()["url"]


def test_viewer_cannot_cancel(api, viewer, operator, make_instance):
    instance = make_instance()
    started = (
        api(operator)
        .post(f"/api/v1/instances/{instance.slug}/upgrades/", {"mode": "image_only", "image_tag": "v2"}, format="json")
        .json()
    )
    assert api(viewer).post(f"/api/v1/upgrades/{started['id']}/cancel/").status_code == 403
    assert Upgrade.objects.get(pk=started["id"]).status == UpgradeStatus.PENDING


def test_the_upgrade_list_gives_steps_without_output_and_the_detail_with_it(api, viewer, make_instance):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    instance = make_instance()
    for _ in range(3):
        upgrade = Upgrade.objects.create(instance=instance, mode="image_only", target_tag="v2", status="succeeded")
        for position in (1, 2):
            OperationStep.objects.create(
                kind="upgrade",
                operation_id=upgrade.pk,
                position=position,
                key=f"step-{position}",
                name=f"step {position}",
                status="succeeded",
                started_at=timezone.now(),
                finished_at=timezone.now(),
                output="x" * 16_000,
            )
    with CaptureQueriesContext(connection) as queries:
        rows = api(viewer).get("/api/v1/upgrades/").json()["results"]
    assert len(rows) == 3 and all(len(r["steps"]) == 2 for r in rows)
    assert set(rows[0]["steps"][0]) == {
        "position",
        "key",
        "name",
        "is_rollback",
        "status",
        "started_at",
        "finished_at",
        "duration_seconds",
    }
    assert not any('instances_operationstep"."output"' in q["sql"] for q in queries.captured_queries)
    detail = api(viewer).get(rows[0]["url"]).json()
    assert detail["steps"][0]["output"] == "x" * 16_000
