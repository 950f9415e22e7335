"""The audit log: Django's admin LogEntry (visible under "Recent actions" and Administration › Log entries)."""

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry

_ACTION_FLAGS = {"added": ADDITION, "changed": CHANGE, "deleted": DELETION}


def audit_log(*, user, obj, action: str, message: str = "") -> None:
    """Record who did what to which object. Messages name fields and values, never secret values."""
    if user is None or not getattr(user, "is_authenticated", False):
        return
    LogEntry.objects.log_actions(
        user_id=user.pk,
        queryset=[obj],
        action_flag=_ACTION_FLAGS[action],
        change_message=message,
        single_object=True,
    )
