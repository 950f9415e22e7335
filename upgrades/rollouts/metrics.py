"""What /metrics reports about rollouts (README "Metrics"): rollouts by status, and the progress of each
rollout that has not ended (scheduled, running or halted): its instances by status and its current wave.
Two queries whatever the number of rollouts; every status is reported, zeros included."""

from django.db.models import Count

from ccp.prometheus import MetricFamily

from .choices import RolloutItemStatus, RolloutStatus
from .models import Rollout, RolloutItem

NOT_ENDED = (RolloutStatus.SCHEDULED, RolloutStatus.RUNNING, RolloutStatus.HALTED)


def rollout_metrics() -> list[MetricFamily]:
    by_status = MetricFamily("ccp_rollouts", "Rollouts recorded in the database, by status.")
    counts = dict(Rollout.objects.values_list("status").annotate(n=Count("pk")).order_by())
    for status in RolloutStatus.values:
        by_status.add(counts.get(status, 0), status=status)

    items = MetricFamily(
        "ccp_rollout_instances",
        "Instances of each rollout that has not ended (scheduled, running, halted), by their status in it.",
    )
    wave = MetricFamily("ccp_rollout_current_wave", "The wave a rollout that has not ended is at (0: the canary).")
    rows = (
        RolloutItem.objects.filter(rollout__status__in=NOT_ENDED)
        .values_list("rollout_id", "rollout__status", "rollout__current_wave", "status")
        .annotate(n=Count("pk"))
        .order_by("rollout_id")
    )
    per_rollout: dict[int, tuple[str, int, dict[str, int]]] = {}
    for rollout_id, status, current_wave, item_status, n in rows:
        per_rollout.setdefault(rollout_id, (status, current_wave, {}))[2][item_status] = n
    for rollout_id, (status, current_wave, statuses) in per_rollout.items():
        for item_status in RolloutItemStatus.values:
            items.add(statuses.get(item_status, 0), rollout=str(rollout_id), rollout_status=status, status=item_status)
        wave.add(current_wave, rollout=str(rollout_id), rollout_status=status)
    return [by_status, items, wave]
