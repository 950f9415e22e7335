"""The rollout API and command (no worker: these check what is created, refused and answered)."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from upgrades.rollouts.models import Rollout

pytestmark = pytest.mark.django_db


@pytest.fixture
def fleet(make_node, make_instance):
    nodes = [make_node(name="rollout-a"), make_node(name="rollout-b")]
    return [make_instance(node=node, image_tag="v1" if n < 2 else "") for node in nodes for n in range(3)]


def test_post_a_rollout_selected_by_node_and_tag(api, operator, fleet):
    response = api(operator).post(
        "/api/v1/rollouts/",
        {"mode": "image_only", "image_tag": "v2", "node": "rollout-a", "tag": "v1", "waves": "1,rest"},
        format="json",
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert response["Location"] == body["url"]
    assert body["status"] == "scheduled" and body["per_node_limit"] == 1 and body["canary_size"] == 1
    assert sorted(item["instance"] for item in body["items"]) == sorted(i.slug for i in fleet[:2])
    assert [item["wave"] for item in body["items"]] == [0, 1]
    assert all(item["node"] == "rollout-a" and item["status"] == "pending" for item in body["items"])
    rollout = Rollout.objects.get(pk=body["id"])
    assert rollout.created_by == operator

    detail = api(operator).get(f"/api/v1/rollouts/{rollout.pk}/")
    assert detail.status_code == 200 and detail.json()["items"][0]["current_step"] == ""
    halted = api(operator).post(f"/api/v1/rollouts/{rollout.pk}/halt/")
    assert halted.status_code == 200 and halted.json()["status"] == "halted"
    resumed = api(operator).post(f"/api/v1/rollouts/{rollout.pk}/resume/", {"image_tag": "v3"}, format="json")
    assert resumed.status_code == 202 and resumed.json()["image_tag"] == "v3" and resumed.json()["status"] == "running"
    cancelled = api(operator).post(f"/api/v1/rollouts/{rollout.pk}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = api(operator).post(f"/api/v1/rollouts/{rollout.pk}/cancel/")
    assert again.status_code == 400 and "already ended" in again.json()["detail"]


@pytest.mark.parametrize(
    "body,field,words",
    [
        ({"mode": "image_only", "image_tag": "v2"}, "instances", "Name the instances"),
        ({"mode": "image_only", "image_tag": "v2", "node": "rollout-a", "waves": "rest,1"}, "detail", '"rest"'),
        ({"mode": "image_only", "node": "rollout-a"}, "detail", "needs the image tag"),
        ({"mode": "image_only", "image_tag": "v2", "node": "nowhere"}, "detail", "at least one instance"),
        ({"mode": "image_only", "image_tag": "v2", "node": "rollout-a", "per_node_limit": 0}, "per_node_limit", ""),
    ],
)
def test_refused_rollouts_say_why_in_json(api, operator, fleet, body, field, words):
    response = api(operator).post("/api/v1/rollouts/", body, format="json")
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert words in str(response.json()[field])
    assert not Rollout.objects.exists()


def test_the_command_refuses_without_a_selection_and_reports_a_rollout_still_running(fleet, capsys):
    with pytest.raises(CommandError) as refused:
        call_command("rollout", "--to", "v2")
    assert refused.value.returncode == 2 and "Name the instances" in str(refused.value)

    with pytest.raises(CommandError) as running:
        call_command("rollout", "--node", "rollout-b", "--to", "v2", "--timeout", "0.1")
    assert running.value.returncode == 1 and "still running" in str(running.value)
    out = capsys.readouterr().out
    assert "to v2: 3 instance(s)" in out and "wave 0" in out
