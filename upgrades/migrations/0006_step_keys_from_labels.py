"""Upgrade steps get the stable key of their step; resume and recovery look steps up by it, so a label
reworded later no longer breaks a resumed upgrade. Rows copied from the old step table carry their label as
key (0005): they get the key their label had when this migration was written (the table below is frozen
here on purpose)."""

from django.db import migrations
from django.db.models import F
from django.utils.text import slugify

KEYS_BY_LABEL = {
    "prepare the install directory": "prepare_install_dir",
    "precheck": "precheck",
    "generate missing secrets": "generate_secrets",
    "render and compare with the approved preview": "render_and_compare",
    "pre-upgrade backup": "pre_upgrade_backup",
    "checksum protected paths": "checksum_protected",
    "protected content hashed": "protected_content_hashed",
    "compare with the running version": "compare_running",
    "keep a copy of .env": "keep_env",
    "copy the files it will overwrite": "keep_copies",
    "set IMAGE_TAG in .env": "set_image_tag",
    "write rendered files": "write_files",
    "create bind-mounted folders": "create_bind_folders",
    "pull images": "pull_images",
    "start containers (up -d --wait)": "up",
    "start containers (up -d --wait --remove-orphans)": "up",
    "verify running images": "verify_images",
    "run the upgrade script": "run_script",
    "health check": "health_check",
    "protected paths unchanged": "protected_unchanged",
    "record version": "record_version",
    "restore .env": "restore_env",
    "restore the copied files": "restore_copies",
    "start previous containers (up -d --wait)": "up_previous",
    "start previous containers (up -d --wait --remove-orphans)": "up_previous",
    "health check after rollback": "health_check_after_rollback",
    "verify running images after rollback": "verify_images_after_rollback",
    "stop the deployed stack (compose down)": "compose_down",
    "remove what the deploy created": "remove_created",
    "resolve attention": "resolve_attention",
}


def backfill_keys(apps, schema_editor):
    OperationStep = apps.get_model("instances", "OperationStep")
    rows = OperationStep.objects.filter(kind="upgrade", key=F("name"))
    for label in rows.values_list("name", flat=True).distinct():
        key = KEYS_BY_LABEL.get(label) or slugify(label).replace("-", "_")[:64] or "step"
        rows.filter(name=label).update(key=key)


class Migration(migrations.Migration):
    dependencies = [("upgrades", "0005_steps_moved_to_operation_step")]

    operations = [migrations.RunPython(backfill_keys, migrations.RunPython.noop)]
