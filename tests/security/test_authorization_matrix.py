"""Who may do what: every endpoint of the URLconf and every registered admin action, for each role.

The endpoints are *generated* (URLconf walk, `admin.site._registry`), and their expected outcomes are
declared once, in EXPECTED below: a new endpoint, method or action without a row fails
`test_every_endpoint_has_a_row`, so nobody has to remember to add it. A row whose endpoint is gone
fails too (a stale row would hide a typo).

Outcomes, per role (anonymous, staff without groups, viewer, operator, superuser):
- `L`: not signed in: API 401, admin redirect to the login page;
- `D`: denied: 403 (admin: 403, or the action is not offered);
- `A`: allowed: authorization passed; the answer is whatever the request deserves (200, 201, 204,
  400 for the deliberately empty body, 404, 409, 502 for the unreachable node) but never 401/403/500.

Bodies are deliberately minimal or invalid, so that an allowed request proves authorization without
starting real work; DRF checks permissions before it reads the body.
"""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, User
from django.test import Client, RequestFactory
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from django_celery_results.models import GroupResult, TaskResult
from rest_framework.authtoken.models import Token, TokenProxy

from instances.choices import BackupStatus
from instances.drift.models import DriftReport
from instances.groups import OPERATORS, VIEWERS
from instances.models import Attention, Backup, Instance, Node, PreviewRun, Restore
from instances.notifications.models import NotificationDelivery, NotificationTarget
from instances.operations.models import OperationStep
from tests.helpers import api_client_for, make_user
from upgrades.models import Release, Upgrade
from upgrades.rollouts.models import Rollout, RolloutItem

ROLES = ("anonymous", "staff", "viewer", "operator", "superuser")

# --- the one table ---------------------------------------------------------------------------------
# "METHOD route" for the API and plain pages; "admin:<url name>" for admin pages (GET);
# "action <app.Model>.<action>" for admin actions. Values: outcomes in ROLES order.
EXPECTED: dict[str, str] = {
    # API: nodes
    "GET api/v1/nodes/": "LDAAA",
    "POST api/v1/nodes/": "LDDDA",
    "GET api/v1/nodes/{name}/": "LDAAA",
    "PUT api/v1/nodes/{name}/": "LDDAA",
    "PATCH api/v1/nodes/{name}/": "LDDAA",
    "DELETE api/v1/nodes/{name}/": "LDDDA",
    "POST api/v1/nodes/{name}/check/": "LDDAA",
    "POST api/v1/nodes/{name}/repin-host-key/": "LDDAA",
    # API: instances
    "GET api/v1/instances/": "LDAAA",
    "POST api/v1/instances/": "LDDDA",
    "GET api/v1/instances/{slug}/": "LDAAA",
    "PUT api/v1/instances/{slug}/": "LDDAA",
    "PATCH api/v1/instances/{slug}/": "LDDAA",
    "DELETE api/v1/instances/{slug}/": "LDDDA",
    "POST api/v1/instances/{slug}/backups/": "LDDAA",
    "POST api/v1/instances/{slug}/check-health/": "LDDAA",
    "POST api/v1/instances/{slug}/generate-secrets/": "LDDAA",
    "GET api/v1/instances/{slug}/preview/": "LDAAA",
    "GET api/v1/instances/{slug}/render/": "LDAAA",
    "POST api/v1/instances/{slug}/upgrades/": "LDDAA",
    "POST api/v1/instances/{slug}/acknowledge/": "LDDAA",
    # API: releases (only superusers or an explicit grant change them)
    "GET api/v1/releases/": "LDAAA",
    "POST api/v1/releases/": "LDDDA",
    "GET api/v1/releases/{version}/": "LDAAA",
    "PUT api/v1/releases/{version}/": "LDDDA",
    "PATCH api/v1/releases/{version}/": "LDDDA",
    "DELETE api/v1/releases/{version}/": "LDDDA",
    # API: backups and upgrades (rows only the system writes)
    "GET api/v1/backups/": "LDAAA",
    "GET api/v1/backups/{pk}/": "LDAAA",
    "POST api/v1/backups/{pk}/restore/": "LDDAA",
    "POST api/v1/backups/{pk}/verify/": "LDDAA",
    "POST api/v1/backups/{pk}/cancel/": "LDDAA",
    "POST api/v1/backups/{pk}/cancel-restore/": "LDDAA",
    "GET api/v1/upgrades/": "LDAAA",
    "GET api/v1/upgrades/{pk}/": "LDAAA",
    "POST api/v1/upgrades/{pk}/cancel/": "LDDAA",
    # progress of a long operation: whoever may view the operation
    "GET api/v1/upgrades/{pk}/progress/": "LDAAA",
    "GET api/v1/backups/{pk}/progress/": "LDAAA",
    "GET api/v1/restores/{pk}/progress/": "LDAAA",
    # API: rollouts (operators start, halt, resume and cancel them)
    "GET api/v1/rollouts/": "LDAAA",
    "POST api/v1/rollouts/": "LDDAA",
    "GET api/v1/rollouts/{pk}/": "LDAAA",
    "POST api/v1/rollouts/{pk}/halt/": "LDDAA",
    "POST api/v1/rollouts/{pk}/resume/": "LDDAA",
    "POST api/v1/rollouts/{pk}/cancel/": "LDDAA",
    # API root, schema, docs, health
    "GET api/v1/": "LAAAA",
    "GET api/schema/": "LAAAA",
    "GET api/docs/": "LAAAA",
    "GET healthz": "AAAAA",
    # Not for users at all: a bearer token or a listed network, both off by default (tests/ccp/test_metrics.py)
    "GET metrics": "DDDDD",
    # admin pages of the fleet
    "admin:index": "LAAAA",
    "admin:fleet-dashboard": "LDAAA",
    "admin:instances_node_changelist": "LDAAA",
    "admin:instances_node_add": "LDDDA",
    "admin:instances_node_change": "LDAAA",
    "admin:instances_node_delete": "LDDDA",
    "admin:instances_node_history": "LDAAA",
    "admin:instances_instance_changelist": "LDAAA",
    "admin:instances_instance_add": "LDDDA",
    "admin:instances_instance_change": "LDAAA",
    "admin:instances_instance_delete": "LDDDA",
    "admin:instances_instance_history": "LDAAA",
    "admin:instances_instance_preview": "LDAAA",
    "admin:instances_instance_preview_run": "LDAAA",
    "admin:instances_instance_upgrade_confirm": "LDDAA",
    # the instance's and the node's page buttons (POST; a GET goes back to the page) and the per-instance upgrades
    "admin:instances_instance_check_health": "LDDAA",
    "admin:instances_instance_back_up": "LDDAA",
    "admin:instances_instance_acknowledge": "LDDAA",
    "admin:instances_instance_quick_upgrade": "LDDAA",
    "admin:instances_instance_upgrade_release": "LDDAA",
    "admin:instances_node_check": "LDDAA",
    "admin:instances_attention_changelist": "LDAAA",
    "admin:instances_attention_add": "LDDDD",
    "admin:instances_attention_change": "LDAAA",
    "admin:instances_attention_delete": "LDDDD",
    "admin:instances_attention_history": "LDAAA",
    "admin:instances_backup_changelist": "LDAAA",
    "admin:instances_backup_add": "LDDDD",
    "admin:instances_backup_change": "LDAAA",
    "admin:instances_backup_delete": "LDDDD",
    "admin:instances_backup_history": "LDAAA",
    "admin:instances_backup_manifest": "LDAAA",
    "admin:instances_restore_changelist": "LDAAA",
    "admin:instances_restore_add": "LDDDD",
    "admin:instances_restore_change": "LDAAA",
    "admin:instances_restore_delete": "LDDDD",
    "admin:instances_restore_history": "LDAAA",
    "admin:upgrades_release_changelist": "LDAAA",
    "admin:upgrades_release_add": "LDDDA",
    "admin:upgrades_release_change": "LDAAA",
    "admin:upgrades_release_delete": "LDDDA",
    "admin:upgrades_release_history": "LDAAA",
    "admin:upgrades_upgrade_changelist": "LDAAA",
    "admin:upgrades_upgrade_add": "LDDDD",
    "admin:upgrades_upgrade_change": "LDAAA",
    "admin:upgrades_upgrade_delete": "LDDDD",
    "admin:upgrades_upgrade_history": "LDAAA",
    "admin:upgrades_upgrade_cancel": "LDDAA",  # POST; a refusal is a message on the upgrade's page
    # notifications (targets hold credentials in their URL: superusers manage them; nobody sees the URL)
    "admin:instances_notificationtarget_changelist": "LDAAA",
    "admin:instances_notificationtarget_add": "LDDDA",
    "admin:instances_notificationtarget_change": "LDAAA",
    "admin:instances_notificationtarget_delete": "LDDDA",
    "admin:instances_notificationtarget_history": "LDAAA",
    "admin:instances_notificationdelivery_changelist": "LDAAA",
    "admin:instances_notificationdelivery_add": "LDDDD",
    "admin:instances_notificationdelivery_change": "LDAAA",
    "admin:instances_notificationdelivery_delete": "LDDDD",
    "admin:instances_notificationdelivery_history": "LDAAA",
    # the nightly drift report (rows only the report writes)
    "admin:instances_driftreport_changelist": "LDAAA",
    "admin:instances_driftreport_add": "LDDDD",
    "admin:instances_driftreport_change": "LDAAA",
    "admin:instances_driftreport_delete": "LDDDD",
    "admin:instances_driftreport_history": "LDAAA",
    "admin:upgrades_rollout_changelist": "LDAAA",
    "admin:upgrades_rollout_add": "LDDDD",
    "admin:upgrades_rollout_change": "LDAAA",
    "admin:upgrades_rollout_delete": "LDDDD",
    "admin:upgrades_rollout_history": "LDAAA",
    "admin:upgrades_rollout_halt": "LDDAA",  # POST views; a GET by whoever may operate goes to the page
    "admin:upgrades_rollout_resume": "LDDAA",
    "admin:upgrades_rollout_cancel": "LDDAA",
    "admin:admin_logentry_changelist": "LDAAA",
    "admin:admin_logentry_add": "LDDDD",
    "admin:admin_logentry_change": "LDAAA",
    "admin:admin_logentry_delete": "LDDDD",
    "admin:admin_logentry_history": "LDAAA",
    # admin pages of users, tokens, schedules and task results: superusers only
    **{
        f"admin:{prefix}_{page}": ("LDDDA" if page in ("changelist", "add") else "LDDDA")
        for prefix in (
            "auth_user",
            "auth_group",
            "authtoken_tokenproxy",
            "django_celery_beat_periodictask",
            "django_celery_beat_clockedschedule",
            "django_celery_beat_crontabschedule",
            "django_celery_beat_solarschedule",
            "django_celery_beat_intervalschedule",
        )
        for page in ("changelist", "add", "change", "delete", "history")
    },
    **{
        f"admin:django_celery_results_{model}_{page}": "LDDDA"
        for model in ("taskresult", "groupresult")
        for page in ("changelist", "add", "change", "delete", "history")
    },
    "admin:auth_user_password_change": "LDDDA",
    # admin actions
    "action instances.Node.check_nodes": "LDDAA",
    "action instances.Node.repin_host_keys": "LDDAA",
    "action instances.Node.delete_selected": "LDDDA",
    "action instances.Instance.quick_upgrade": "LDDAA",
    "action instances.Instance.upgrade_to_release": "LDDAA",
    "action instances.Instance.roll_out": "LDDAA",
    "action instances.Instance.preview_release": "LDAAA",
    "action instances.Instance.back_up_now": "LDDAA",
    "action instances.Instance.check_health": "LDDAA",
    "action instances.Instance.generate_missing_secrets": "LDDAA",
    "action instances.Instance.acknowledge_attention": "LDDAA",
    "action instances.Instance.delete_selected": "LDDDA",
    "action instances.Backup.verify_selected": "LDDAA",
    "action instances.NotificationTarget.send_test": "LDDDA",
    "action instances.NotificationTarget.delete_selected": "LDDDA",
    "action instances.Backup.restore_selected": "LDDAA",
    "action instances.Backup.cancel_selected": "LDDAA",
    "action instances.Restore.cancel_selected": "LDDAA",
    "action upgrades.Release.delete_selected": "LDDDA",
    "action auth.User.delete_selected": "LDDDA",
    "action auth.Group.delete_selected": "LDDDA",
    "action django_celery_beat.PeriodicTask.enable_tasks": "LDDDA",
    "action django_celery_beat.PeriodicTask.disable_tasks": "LDDDA",
    "action django_celery_beat.PeriodicTask.toggle_tasks": "LDDDA",
    "action django_celery_beat.PeriodicTask.run_tasks": "LDDDA",
    "action django_celery_beat.PeriodicTask.delete_selected": "LDDDA",
    "action django_celery_beat.ClockedSchedule.delete_selected": "LDDDA",
    "action django_celery_beat.CrontabSchedule.delete_selected": "LDDDA",
    "action django_celery_beat.SolarSchedule.delete_selected": "LDDDA",
    "action django_celery_beat.IntervalSchedule.delete_selected": "LDDDA",
    "action django_celery_results.TaskResult.delete_selected": "LDDDA",
    "action django_celery_results.GroupResult.delete_selected": "LDDDA",
}

# Admin pages that are not about permissions at all (the login form, static helpers).
ADMIN_PUBLIC = {
    "admin:login",
    "admin:logout",
    "admin:password_change",
    "admin:password_change_done",
    "admin:jsi18n",
    "admin:autocomplete",
    "admin:view_on_site",
    "admin:app_list",
}


# --- generating the endpoints ----------------------------------------------------------------------


def _walk(patterns, prefix: str = "", namespace: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern, namespace


def _route(raw: str) -> str:
    """'api/v1/^nodes/(?P<name>[^/.]+)/$' -> 'api/v1/nodes/{name}/'."""
    route = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", raw)
    route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
    return route.replace("^", "").replace("$", "")


def generated_endpoints() -> list[str]:
    keys = []
    for raw, pattern, namespace in _walk(get_resolver().url_patterns):
        if "format" in pattern.pattern.regex.groupindex:
            continue  # the .json/.api suffix twin of a route: same view, same permissions
        if namespace == "admin:" or raw.startswith("admin/"):
            name = f"admin:{pattern.name}" if pattern.name else None
            if name and name not in ADMIN_PUBLIC:
                keys.append(name)
            continue
        methods = getattr(pattern.callback, "actions", None) or {"get": None}
        # HEAD is answered as GET (DRF adds it to a view's actions once the view has served a request)
        keys += [f"{method.upper()} {_route(raw)}" for method in methods if method != "head"]
    for model, modeladmin in admin.site._registry.items():
        request = RequestFactory().get("/")
        request.user = User(is_superuser=True, is_staff=True, is_active=True)
        keys += [f"action {model._meta.label}.{name}" for name in modeladmin.get_actions(request)]
    return sorted(set(keys))


def test_every_endpoint_has_a_row():
    generated = set(generated_endpoints())
    missing = sorted(generated - set(EXPECTED))
    stale = sorted(set(EXPECTED) - generated)
    assert not missing, "endpoints without a row in EXPECTED (add one):\n" + "\n".join(missing)
    assert not stale, "rows in EXPECTED without an endpoint (remove them):\n" + "\n".join(stale)


# --- the objects every endpoint is asked about -----------------------------------------------------


@pytest.fixture
def world(db):
    node = Node(name="matrix-node", address="127.0.0.1", ssh_port=1, driver="ssh")
    node.full_clean()
    node.save()
    instance = Instance(
        name="Matrix",
        slug="matrix",
        node=node,
        install_dir="/srv/ccp-testbed/matrix",
        compose_project="matrix",
        ports={"http": 39001},
    )
    instance.save()
    release = Release.objects.create(version="v1.2.3", image_tag="v1", template_set="testbed")
    backup = Backup.objects.create(instance=instance, status=BackupStatus.FAILED, error="made by the test")
    restore = Restore.objects.create(backup=backup, instance=instance, source="x", status="failed")
    upgrade = Upgrade.objects.create(
        instance=instance,
        mode="image_only",
        to_version="v2",
        target_tag="v2",
        status="succeeded",
        finished_at=timezone.now(),
    )
    OperationStep.objects.create(
        kind="upgrade", operation_id=upgrade.pk, position=1, key="precheck", name="precheck", started_at=timezone.now()
    )
    attention = Attention.objects.create(instance=instance, reason="made by the test")
    target = NotificationTarget(name="matrix-target")
    target.set_url("json://127.0.0.1:9/matrix")
    target.save()
    delivery = NotificationDelivery.objects.create(target=target, event="test", title="made by the test")
    drift_report = DriftReport.objects.create()
    rollout = Rollout.objects.create(mode="image_only", image_tag="v2", status="succeeded")
    RolloutItem.objects.create(rollout=rollout, instance=instance, wave=0, position=0, status="succeeded")
    runs = {
        purpose: PreviewRun.objects.create(
            purpose=purpose, release_version=release.version, instance_ids=[instance.pk], status="succeeded"
        )
        for purpose in ("preview", "upgrade")
    }
    return {
        "attention": attention,
        "notification_target": target,
        "notification_delivery": delivery,
        "drift_report": drift_report,
        "preview_run": runs["preview"],
        "upgrade_run": runs["upgrade"],
        "name": node.name,
        "slug": instance.slug,
        "version": release.version,
        "node": node,
        "instance": instance,
        "release": release,
        "backup": backup,
        "restore": restore,
        "upgrade": upgrade,
        "rollout": rollout,
    }


def _user_for(role: str) -> User | None:
    return {
        "anonymous": lambda: None,
        "staff": lambda: make_user("staff-no-groups"),
        "viewer": lambda: make_user("viewer", VIEWERS),
        "operator": lambda: make_user("operator", OPERATORS),
        "superuser": lambda: make_user("root-admin", is_superuser=True),
    }[role]()


def _api_url(key: str, world: dict) -> tuple[str, str]:
    method, route = key.split(" ", 1)
    collection = (route.split("/") + ["", "", ""])[2]
    pk = world[{"upgrades": "upgrade", "restores": "restore", "rollouts": "rollout"}.get(collection, "backup")].pk
    return method, "/" + route.format(name=world["name"], slug=world["slug"], version=world["version"], pk=pk)


def _admin_url(name: str, world: dict) -> str:
    for candidate in (name, name.split(":", 1)[1]):  # the fleet dashboard lives outside the admin's namespace
        try:
            return reverse(candidate)
        except NoReverseMatch:
            continue
    runs = {
        "admin:instances_instance_preview_run": "preview_run",
        "admin:instances_instance_upgrade_confirm": "upgrade_run",
    }
    if name in runs:
        return reverse(name, args=[world[runs[name]].pk])
    model = name.split(":", 1)[1].rsplit("_", 1)[0]
    ours = {
        "instances_node": world["node"],
        "instances_instance": world["instance"],
        "instances_backup": world["backup"],
        "instances_attention": world["attention"],
        "instances_restore": world["restore"],
        "instances_notificationtarget": world["notification_target"],
        "instances_notificationdelivery": world["notification_delivery"],
        "instances_driftreport": world["drift_report"],
        "upgrades_release": world["release"],
        "upgrades_upgrade": world["upgrade"],
        "upgrades_rollout": world["rollout"],
    }
    # a view name of more than one word (instances_instance_check_health): the model is its known prefix
    model = next((prefix for prefix in ours if name.split(":", 1)[1].startswith(prefix + "_")), model)
    obj = ours.get(model)
    if name.endswith("_password_change"):
        model = "auth_user"
    object_id = obj.pk if obj is not None else _third_party_object(model)
    return reverse(name, args=[object_id])


def _third_party_object(model: str):
    """A real row of a third-party admin's model, so its object pages answer about permissions, not absence."""
    owner, _ = User.objects.get_or_create(username="matrix-owner")
    every = IntervalSchedule.objects.get_or_create(every=1, period="minutes")[0]
    makers = {
        "admin_logentry": lambda: LogEntry.objects.create(user=owner, object_repr="x", action_flag=1),
        "auth_user": lambda: owner,
        "auth_group": lambda: Group.objects.get_or_create(name="matrix-group")[0],
        "authtoken_tokenproxy": lambda: TokenProxy.objects.get(pk=Token.objects.get_or_create(user=owner)[0].pk),
        "django_celery_beat_intervalschedule": lambda: every,
        "django_celery_beat_clockedschedule": lambda: ClockedSchedule.objects.create(clocked_time=timezone.now()),
        "django_celery_beat_crontabschedule": lambda: CrontabSchedule.objects.create(),
        "django_celery_beat_solarschedule": lambda: SolarSchedule.objects.create(
            event="sunrise", latitude=0, longitude=0
        ),
        "django_celery_beat_periodictask": lambda: PeriodicTask.objects.create(name="matrix", task="x", interval=every),
        "django_celery_results_taskresult": lambda: TaskResult.objects.create(task_id="matrix"),
        "django_celery_results_groupresult": lambda: GroupResult.objects.create(group_id="matrix"),
    }
    return makers[model]().pk


PARAMS = [(key, role) for key in sorted(EXPECTED) for role in ROLES]


@pytest.mark.django_db
@pytest.mark.parametrize("key,role", PARAMS, ids=[f"{k}|{r}" for k, r in PARAMS])
def test_authorization(key: str, role: str, world, settings):
    settings.CCP_HEALTH_TIMEOUT = 0
    expected = EXPECTED[key][ROLES.index(role)]
    user = _user_for(role)
    if key.startswith("action "):
        _check_action(key, user, expected)
    elif key.startswith("admin:"):
        _check_admin_page(key, user, expected, world)
    else:
        _check_api(key, user, expected, world)


def _check_api(key: str, user, expected: str, world: dict) -> None:
    method, url = _api_url(key, world)
    client = api_client_for(user)
    response = getattr(client, method.lower())(url, {}, format="json") if method != "GET" else client.get(url)
    status = response.status_code
    assert status < 500 or status in (502, 504), f"{key} as {user}: {status} {response.content[:300]!r}"
    if expected == "L":
        assert status == 401, f"{key}: anonymous got {status}"
    elif expected == "D":
        assert status == 403, f"{key} as {user}: expected 403, got {status}"
    else:
        assert status not in (401, 403), f"{key} as {user}: expected access, got {status} {response.content[:300]!r}"


def _check_admin_page(name: str, user, expected: str, world: dict) -> None:
    url = _admin_url(name, world)
    client = Client()
    if user is not None:
        client.force_login(user)
    if name == "admin:upgrades_upgrade_cancel":
        _check_admin_cancel(client, user, expected, world)
        return
    response = client.get(url)
    status = response.status_code
    assert status < 500, f"{name} as {user}: {status}"
    to_login = status == 302 and "/admin/login/" in response.get("Location", "")
    if expected == "L":
        assert to_login, f"{name}: anonymous got {status}"
    elif expected == "D":
        assert status == 403, f"{name} as {user}: expected 403, got {status}"
    else:
        assert status in (200, 302, 404) and not to_login, f"{name} as {user}: expected access, got {status}"


def _check_admin_cancel(client: Client, user, expected: str, world: dict) -> None:
    pending = Upgrade.objects.create(instance=world["instance"], mode="image_only", to_version="v3", target_tag="v3")
    response = client.post(reverse("admin:upgrades_upgrade_cancel", args=[pending.pk]))
    pending.refresh_from_db()
    if expected == "L":
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    stopped = pending.status == "cancelled" or pending.cancel_requested
    assert stopped == (expected == "A"), f"cancel as {user}: status {pending.status}, expected {expected}"


def _check_action(key: str, user, expected: str) -> None:
    label, action = key.split(" ", 1)[1].rsplit(".", 1)
    model = next(m for m in admin.site._registry if m._meta.label == label)
    request = RequestFactory().get("/")
    request.user = user
    if user is None:
        assert expected == "L"
        client = Client()
        response = client.post(
            reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"), {"action": action}
        )
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
        return
    modeladmin = admin.site._registry[model]
    offered = action in modeladmin.get_actions(request) and modeladmin.has_view_or_change_permission(request)
    assert offered == (expected == "A"), f"{key} as {user.username}: offered={offered}, expected {expected}"
