"""Deleting rows: what may go, and a sentence naming what depends on a row that may not.

History survives: an instance with upgrades, backups or restores is never deleted (set its status to
disabled instead); a node with instances and a release that upgrades used are kept too. The database
enforces this (PROTECT foreign keys); this module turns the refusal into a Conflict (HTTP 409) that
names the dependents, instead of a ProtectedError (HTTP 500).
"""

from collections import defaultdict

from django.db import transaction
from django.db.models import ProtectedError, RestrictedError

from ccp.audit import audit_log
from ccp.errors import Conflict

SHOWN_PER_KIND = 5


def dependents_sentence(objects) -> str:
    """'3 upgrades (#4, #5, #6), 1 backup (…)' from the protected objects of a ProtectedError."""
    by_kind: dict[str, list] = defaultdict(list)
    for obj in objects:
        by_kind[obj._meta.verbose_name_plural].append(obj)
    parts = []
    for kind, rows in sorted(by_kind.items()):
        names = ", ".join(str(row) for row in rows[:SHOWN_PER_KIND])
        more = f", and {len(rows) - SHOWN_PER_KIND} more" if len(rows) > SHOWN_PER_KIND else ""
        parts.append(f"{len(rows)} {kind} ({names}{more})")
    return "; ".join(parts)


def _advice(obj) -> str:
    if obj._meta.label == "instances.Instance":
        return " An instance's history is kept: set its status to disabled instead."
    return ""


@transaction.atomic
def object_delete(*, obj, user=None) -> None:
    """Delete `obj` and audit it, or raise Conflict naming what depends on it (nothing is deleted then)."""
    lock = getattr(obj, "lock", None) if obj._meta.label == "instances.Instance" else None
    if lock is not None:
        raise Conflict(f"{obj} cannot be deleted while an operation runs on it.")
    audit_log(user=user, obj=obj, action="deleted", message="Deleted via API.")  # rolled back with a refusal
    try:
        obj.delete()
    except (ProtectedError, RestrictedError) as exc:
        blocking = exc.protected_objects if isinstance(exc, ProtectedError) else exc.restricted_objects
        raise Conflict(
            f"{obj} cannot be deleted: {dependents_sentence(blocking)} depend on it.{_advice(obj)}"
        ) from None
