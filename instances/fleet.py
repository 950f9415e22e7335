"""The fleet at a glance: what the dashboard page and `manage.py fleet_status` show."""

from dataclasses import dataclass, field

from django.db.models import Count

from upgrades.choices import UpgradeStatus
from upgrades.models import InstanceLock, Upgrade
from upgrades.selectors import annotate_last_upgrade

from .models import Instance, Node
from .selectors import with_open_attention


@dataclass
class FleetSummary:
    instances: list = field(default_factory=list)
    by_health: dict = field(default_factory=dict)
    by_status: dict = field(default_factory=dict)
    nodes: list = field(default_factory=list)
    running: list = field(default_factory=list)
    attention: list = field(default_factory=list)
    recent_failures: list = field(default_factory=list)


def fleet_summary() -> FleetSummary:
    instances = list(with_open_attention(annotate_last_upgrade(Instance.objects.select_related("node")))
                     .order_by("node__name", "slug"))
    return FleetSummary(
        instances=instances,
        by_health=dict(Instance.objects.values_list("health").annotate(n=Count("pk")).order_by()),
        by_status=dict(Instance.objects.values_list("status").annotate(n=Count("pk")).order_by()),
        nodes=list(Node.objects.annotate(instance_count=Count("instances")).order_by("name")),
        running=list(InstanceLock.objects.select_related("instance").order_by("acquired_at")),
        attention=[i for i in instances if i.unresolved_attention],  # resolved records are history
        recent_failures=list(Upgrade.objects.select_related("instance").filter(
            status__in=[UpgradeStatus.FAILED, UpgradeStatus.ROLLED_BACK, UpgradeStatus.INTERRUPTED])
            .order_by("-created_at")[:20]),
    )
