"""The two staff groups. Data migrations call `sync_fleet_groups` whenever new permissions appear.

Rules rather than lists, so a model added later is covered by re-running the sync in its migration:
- Fleet viewers: every view_* permission of the fleet apps, and the audit log.
- Fleet operators: what viewers have, plus change on nodes and instances, and every operation
  permission (codenames starting with operate_, or listed in OPERATOR_EXTRA).
"""

FLEET_APPS = ("instances", "upgrades")
VIEWERS = "Fleet viewers"
OPERATORS = "Fleet operators"
OPERATOR_EXTRA = {"change_instance", "change_node", "add_upgrade", "add_backup", "restore_backup", "cancel_upgrade"}


def sync_fleet_groups(apps, schema_editor=None) -> None:
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True  # create_permissions skips apps it thinks have no models
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    fleet = Permission.objects.filter(content_type__app_label__in=FLEET_APPS)
    view = list(fleet.filter(codename__startswith="view_")) + list(
        Permission.objects.filter(content_type__app_label="admin", codename="view_logentry")
    )
    operate = list(fleet.filter(codename__startswith="operate_")) + list(fleet.filter(codename__in=OPERATOR_EXTRA))

    viewers, _ = Group.objects.get_or_create(name=VIEWERS)
    viewers.permissions.add(*view)
    operators, _ = Group.objects.get_or_create(name=OPERATORS)
    operators.permissions.add(*view, *operate)
