"""manage.py fleet_status: one line per instance (node, status, version, health, last upgrade)."""

from django.core.management.base import BaseCommand

from instances.fleet import fleet_instances, fleet_summary
from upgrades.selectors import last_upgrade_summary


class Command(BaseCommand):
    help = "Print the fleet: every instance with its node, status, running version, health and last upgrade."

    def handle(self, *args, **options) -> None:
        summary, instances = fleet_summary(), fleet_instances()
        rows = [("INSTANCE", "NODE", "STATUS", "VERSION", "HEALTH", "LAST UPGRADE")]
        rows += [
            (i.slug, i.node.name, i.status, i.observed_version or "-", i.health, last_upgrade_summary(i))
            for i in instances
        ]
        widths = [max(len(str(row[c])) for row in rows) for c in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
        health = ", ".join(f"{n} {h}" for h, n in sorted(summary.by_health.items())) or "no instances"
        self.stdout.write(f"\n{summary.instance_count} instance(s) on {len(summary.nodes)} node(s): {health}.")
        for lock in summary.running:
            self.stdout.write(f"running: {lock.get_kind_display().lower()} #{lock.operation_id} on {lock.instance}")
        for instance in instances:
            if instance.attention:
                self.stdout.write(self.style.WARNING(f"attention: {instance}: {instance.attention}"))
