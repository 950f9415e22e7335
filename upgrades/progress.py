"""How upgrades (and first deploys) read on the progress endpoint (instances.operations.progress)."""

from instances.operations.choices import OperationKind
from instances.operations.progress import Source, register_source

from .models import Upgrade

register_source(
    OperationKind.UPGRADE,
    Source(
        model=Upgrade,
        view_permission="upgrades.view_upgrade",
        step_total=lambda upgrade: upgrade.state.get("step_total"),
        is_final=lambda upgrade: upgrade.is_final,
    ),
)
