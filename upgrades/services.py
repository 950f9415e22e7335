"""Writes for releases (upgrades come with the upgrade issue)."""

from django.db import transaction

from instances.services import audit_log

from .models import Release


@transaction.atomic
def release_save(*, release: Release, user=None, changed_fields: list[str] | None = None) -> Release:
    created = release.pk is None
    if release.is_default:
        # One default at a time: making this one the default retires the previous one.
        Release.objects.filter(is_default=True).exclude(pk=release.pk).update(is_default=False)
    release.full_clean()
    release.save()
    audit_log(user=user, obj=release, action="added" if created else "changed",
              message="Added via API." if created else f"Changed {', '.join(changed_fields or [])} via API.")
    return release
