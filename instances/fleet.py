"""The fleet at a glance: what the dashboard page and `manage.py fleet_status` show.

The summary costs a fixed number of queries whatever the fleet's size: counts come from aggregate
queries, the attention list from the partial index on instances that need attention.
"""

from dataclasses import dataclass, field

from django.db.models import Count

from upgrades.choices import UpgradeStatus
from upgrades.models import Upgrade
from upgrades.selectors import annotate_last_upgrade

from .drift.selectors import DriftSummary, drift_summary
from .models import Attention, Instance, Node
from .operations.models import InstanceLock
from .selectors import with_open_attention

# The dashboard names at most this many instances that need attention (and says how many there are).
ATTENTION_SHOWN = 100


@dataclass
class FleetSummary:
    instance_count: int = 0
    by_health: dict = field(default_factory=dict)
    by_status: dict = field(default_factory=dict)
    nodes: list = field(default_factory=list)
    running: list = field(default_factory=list)
    attention: list = field(default_factory=list)
    attention_count: int = 0
    recent_failures: list = field(default_factory=list)
    drift: DriftSummary = field(default_factory=DriftSummary)


def needing_attention():
    """Instances with an unresolved attention record (served by the partial index attention_open)."""
    return Instance.objects.filter(pk__in=Attention.objects.filter(resolved_at__isnull=True).values("instance"))


def fleet_summary() -> FleetSummary:
    by_status = dict(Instance.objects.values_list("status").annotate(n=Count("pk")).order_by())
    attention = with_open_attention(needing_attention().only("pk", "slug")).order_by("slug")
    return FleetSummary(
        instance_count=sum(by_status.values()),
        by_health=dict(Instance.objects.values_list("health").annotate(n=Count("pk")).order_by()),
        by_status=by_status,
        nodes=list(Node.objects.annotate(instance_count=Count("instances")).order_by("name")),
        running=list(InstanceLock.objects.select_related("instance").order_by("acquired_at")),
        attention=list(attention[:ATTENTION_SHOWN]),
        attention_count=needing_attention().count(),
        recent_failures=list(
            Upgrade.objects.select_related("instance")
            .filter(
                status__in=[
                    UpgradeStatus.FAILED,
                    UpgradeStatus.ROLLED_BACK,
                    UpgradeStatus.INTERRUPTED,
                    UpgradeStatus.ROLLED_BACK_INTERRUPTED,
                ]
            )
            .order_by("-created_at")[:20]
        ),
        drift=drift_summary(),
    )


def fleet_instances() -> list[Instance]:
    """Every instance with its node and last upgrade, for `fleet_status` (a listing of the whole fleet)."""
    return list(
        with_open_attention(annotate_last_upgrade(Instance.objects.select_related("node"))).order_by(
            "node__name", "slug"
        )
    )
