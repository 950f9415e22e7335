"""The admin: changelists stay cheap, secrets are never shown, changes are audited."""

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


def changelist_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_instance_changelist_query_count_does_not_grow(
    client, superuser, make_node, make_instance, django_assert_max_num_queries
):
    client.force_login(superuser)
    nodes = [make_node() for _ in range(5)]
    for i in range(10):
        make_instance(node=nodes[i % 5], ports={})
    small = changelist_queries(client, "/admin/instances/instance/")
    for i in range(190):
        make_instance(node=nodes[i % 5], ports={})
    with django_assert_max_num_queries(small):
        response = client.get("/admin/instances/instance/?all=")
    assert response.content.count(b'class="action-select"') == 200


def test_secret_values_never_appear_on_the_change_page(client, superuser, make_instance):
    client.force_login(superuser)
    instance = make_instance()
    page = client.get(f"/admin/instances/instance/{instance.pk}/change/").content.decode()
    for name, value in instance.get_secrets().items():
        assert value not in page
        assert f"{name} (set)" in page


def test_admin_can_set_a_secret_and_the_change_is_logged(client, superuser, make_instance):
    client.force_login(superuser)
    instance = make_instance()
    url = f"/admin/instances/instance/{instance.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(
        {
            "node": instance.node_id,
            "ports": '{"http": 30001}',
            "protected_paths": '["mkdocs/"]',
            "health_urls": "[]",
            "secret_updates": "API_TOKEN=tok-123456",
        }
    )
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    instance.refresh_from_db()
    assert instance.get_secrets()["API_TOKEN"] == "tok-123456"
    entry = LogEntry.objects.filter(object_id=str(instance.pk)).latest("action_time")
    assert "tok-123456" not in entry.change_message


def test_operator_sees_the_audit_log(client, operator, superuser, make_instance):
    instance = make_instance()
    LogEntry.objects.log_actions(
        user_id=superuser.pk, queryset=[instance], action_flag=2, change_message="Changed domain.", single_object=True
    )
    client.force_login(operator)
    page = client.get("/admin/admin/logentry/")
    assert page.status_code == 200 and instance.slug in page.content.decode()
