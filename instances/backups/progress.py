"""How backups and restores read on the progress endpoint (instances.operations.progress)."""

from instances.choices import BackupStatus, RestoreStatus
from instances.models import Backup, Restore
from instances.operations.choices import OperationKind
from instances.operations.progress import Source, register_source

from . import layout

# Restore: verify, unpack each archive, check unpacked, swap in, check in place, start the stack.
RESTORE_FIXED_STEPS = 5

register_source(
    OperationKind.BACKUP,
    Source(
        model=Backup,
        view_permission="instances.view_backup",
        is_final=lambda backup: backup.status not in (BackupStatus.PENDING, BackupStatus.RUNNING),
    ),
)
register_source(
    OperationKind.RESTORE,
    Source(
        model=Restore,
        view_permission="instances.view_restore",
        step_total=lambda restore: (
            RESTORE_FIXED_STEPS
            + len([name for name in layout.RESTORABLE if name in (restore.backup.manifest if restore.backup else {})])
        ),
        is_final=lambda restore: restore.status not in (RestoreStatus.PENDING, RestoreStatus.RUNNING),
    ),
)
