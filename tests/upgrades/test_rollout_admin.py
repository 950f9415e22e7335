"""The "Roll out…" action and the rollout page in the admin."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse

from upgrades.rollouts.models import Rollout

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_of():
    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


def test_roll_out_action_checks_then_starts_and_the_rollout_page_shows_waves(client_of, operator, make_instance):
    instances = [make_instance(), make_instance()]
    changelist = reverse("admin:instances_instance_changelist")
    selection = {"action": "roll_out", ACTION_CHECKBOX_NAME: [i.pk for i in instances]}
    form = {"mode": "image_only", "image_tag": "v2", "canary_size": 1, "waves": "rest", "parallelism": 0}
    form["failure_budget"] = 0
    client = client_of(operator)

    page = client.post(changelist, selection)
    assert page.status_code == 200 and b"Check instances" in page.content and b"Start rollout" not in page.content

    checked = client.post(changelist, {**selection, **form, "post": "check"})
    assert checked.status_code == 200 and b"Start rollout" in checked.content
    assert b"the new image tag" in checked.content

    started = client.post(changelist, {**selection, **form, "post": "yes"})
    rollout = Rollout.objects.get()
    assert started.status_code == 302 and started["Location"] == reverse(
        "admin:upgrades_rollout_change", args=[rollout.pk]
    )
    assert rollout.created_by == operator and rollout.items.count() == 2

    shown = client.get(started["Location"])
    assert shown.status_code == 200
    for words in (b"Canary", b"Wave 1", b"Halt", b"Cancel", b'http-equiv="refresh"', instances[0].slug.encode()):
        assert words in shown.content

    client.post(reverse("admin:upgrades_rollout_halt", args=[rollout.pk]))
    rollout.refresh_from_db()
    assert rollout.status == "halted"
    assert b"Resume" in client.get(started["Location"]).content


def test_a_bad_wave_spec_is_shown_on_the_form(client_of, operator, make_instance):
    instance = make_instance()
    response = client_of(operator).post(
        reverse("admin:instances_instance_changelist"),
        {
            "action": "roll_out",
            ACTION_CHECKBOX_NAME: [instance.pk],
            "mode": "image_only",
            "image_tag": "v2",
            "canary_size": 1,
            "waves": "rest,2",
            "parallelism": 0,
            "failure_budget": 0,
            "post": "yes",
        },
    )
    assert response.status_code == 200 and b"can only be the last wave" in response.content
    assert not Rollout.objects.exists()
