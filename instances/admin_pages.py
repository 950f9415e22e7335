"""The instance's page and the node's page: what runs, what it did (history, newest first), and the
buttons for what an operator does next. Each button posts to a small view that calls the same service
as the changelist action and the API, then returns to the page."""

from dataclasses import dataclass
from datetime import datetime
from functools import wraps

from django.contrib import messages
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from ccp.badges import badge
from ccp.errors import CCPError
from upgrades.selectors import instance_upgrades

from .attention import attention_acknowledge
from .backups.services import backup_request
from .choices import BackupLabel
from .context import default_release
from .models import Attention, Backup, Instance, Node, Restore
from .node_keys import node_public_key
from .tasks import instance_check_health_task, node_check_task

HISTORY_ROWS = 40


@dataclass
class HistoryRow:
    kind: str  # upgrade, backup, restore, attention, audit (the row's CSS class: history-<kind>)
    when: datetime
    what: str
    title: str
    url: str
    state: object  # a badge, or ""
    detail: str = ""
    revert: tuple[str, str] | None = None  # ("quick", tag) or ("release", version)


def _url(name: str, pk) -> str:
    return reverse(f"admin:{name}", args=[pk])


def instance_history(instance: Instance) -> list[HistoryRow]:
    """Upgrades and deploys, backups, restores, attention and audit entries of the instance, newest first."""
    rows = [
        HistoryRow(
            kind="upgrade",
            when=u.created_at,
            what=u.kind_display,
            title=f"{u.kind_display} to {u.to_version or u.target_tag}"
            + (f" (from {u.from_version})" if u.from_version else ""),
            url=_url("upgrades_upgrade_change", u.pk),
            state=badge(u.status, u.get_status_display()),
            detail=u.error,
            revert=revert,
        )
        for u, revert in instance_upgrades(instance, limit=HISTORY_ROWS)
    ]
    rows += [
        HistoryRow(
            kind="backup",
            when=b.created_at,
            what="Backup",
            title=str(b),
            url=_url("instances_backup_change", b.pk),
            state=badge(b.status, b.get_status_display()),
            detail=b.error,
        )
        for b in Backup.objects.filter(instance=instance).select_related("instance")[:HISTORY_ROWS]
    ]
    rows += [
        HistoryRow(
            kind="restore",
            when=r.created_at,
            what="Restore",
            title=str(r),
            url=_url("instances_restore_change", r.pk),
            state=badge(r.status, r.get_status_display()),
            detail=r.error,
        )
        for r in Restore.objects.filter(instance=instance).select_related("instance", "backup__instance")[:HISTORY_ROWS]
    ]
    rows += [
        HistoryRow(
            kind="attention",
            when=a.raised_at,
            what="Attention",
            title=a.reason,
            url=_url("instances_attention_change", a.pk),
            state=badge("ok", "resolved") if a.is_resolved else badge("attention", "needs attention"),
            detail=f"Resolved by {a.resolved_by}: {a.resolution}" if a.is_resolved else "",
        )
        for a in Attention.objects.filter(instance=instance).select_related("resolved_by")[:HISTORY_ROWS]
    ]
    content_type = ContentType.objects.get_for_model(Instance)
    rows += [
        HistoryRow(
            kind="audit",
            when=e.action_time,
            what="Audit",
            title=f"{e.user}: {e.get_change_message() or e.get_action_flag_display()}",
            url=_url("admin_logentry_change", e.pk),
            state="",
        )
        for e in LogEntry.objects.filter(content_type=content_type, object_id=str(instance.pk)).select_related("user")[
            :HISTORY_ROWS
        ]
    ]
    return sorted(rows, key=lambda row: row.when, reverse=True)[:HISTORY_ROWS]


def instance_page_context(instance: Instance, request) -> dict:
    open_attention = instance.unresolved_attention
    return {
        "health_badge": badge(instance.health, instance.get_health_display()),
        "status_badge": badge(instance.status, instance.get_status_display()),
        "attention_badge": badge("attention", "needs attention") if open_attention else badge("ok", "none"),
        "open_attention": open_attention,
        "history": instance_history(instance),
        "default_release": default_release(),
        "can_operate": request.user.has_perm("instances.operate_instance"),
    }


def node_page_context(node: Node, request) -> dict:
    if node.check_ok is None:
        check = badge("unknown", "never checked")
    else:
        check = badge("ok", "ok") if node.check_ok else badge("failed", "failed")
    return {
        "public_key": node_public_key(node),
        "check_badge": check,
        "node_instances": list(node.instances.order_by("slug")),
        "can_operate": request.user.has_perm("instances.operate_node"),
    }


# --- the buttons ---------------------------------------------------------------------------------


def buttons_post(permission: str, model, page: str):
    """A button's view: 403 without `permission`; a GET (a reload, a link) goes back to the object's page
    without doing anything; a POST runs the view with the object."""

    def decorate(view):
        @wraps(view)
        def wrapper(request, object_id: int):
            if not request.user.has_perm(permission):
                raise PermissionDenied
            obj = get_object_or_404(model, pk=object_id)
            if request.method != "POST":
                return HttpResponseRedirect(_url(page, obj.pk))
            return view(request, obj)

        return wrapper

    return decorate


@buttons_post("instances.operate_instance", Instance, "instances_instance_change")
def instance_check_health_view(request, instance: Instance):
    transaction.on_commit(lambda: instance_check_health_task.delay(instance.pk))
    messages.success(request, f"Health check of {instance} queued; reload this page in a few seconds.")
    return HttpResponseRedirect(_url("instances_instance_change", instance.pk))


@buttons_post("instances.operate_instance", Instance, "instances_instance_change")
def instance_back_up_view(request, instance: Instance):
    try:
        backup = backup_request(instance=instance, label=BackupLabel.MANUAL, user=request.user)
    except CCPError as error:
        messages.error(request, error.message)
        return HttpResponseRedirect(_url("instances_instance_change", instance.pk))
    url = _url("instances_backup_change", backup.pk)
    messages.success(request, format_html('<a href="{}">{}</a> queued.', url, backup))
    return HttpResponseRedirect(url)


@buttons_post("instances.operate_instance", Instance, "instances_instance_change")
def instance_acknowledge_view(request, instance: Instance):
    try:
        resolved = attention_acknowledge(instance=instance, user=request.user, note=request.POST.get("note", ""))
        messages.success(request, f"{instance}: resolved {len(resolved)} attention record(s).")
    except CCPError as error:
        messages.error(request, error.message)
    return HttpResponseRedirect(_url("instances_instance_change", instance.pk))


@buttons_post("instances.operate_node", Node, "instances_node_change")
def node_check_view(request, node: Node):
    transaction.on_commit(lambda: node_check_task.delay(node.pk))
    messages.success(request, f"Check of {node} queued; reload this page in a few seconds.")
    return HttpResponseRedirect(_url("instances_node_change", node.pk))


def instance_page_urls(modeladmin) -> list:
    site = modeladmin.admin_site
    return [
        path(
            "<int:object_id>/check-health/",
            site.admin_view(instance_check_health_view),
            name="instances_instance_check_health",
        ),
        path("<int:object_id>/back-up/", site.admin_view(instance_back_up_view), name="instances_instance_back_up"),
        path(
            "<int:object_id>/acknowledge/",
            site.admin_view(instance_acknowledge_view),
            name="instances_instance_acknowledge",
        ),
    ]


def node_page_urls(modeladmin) -> list:
    return [
        path("<int:object_id>/check/", modeladmin.admin_site.admin_view(node_check_view), name="instances_node_check")
    ]
