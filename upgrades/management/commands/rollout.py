"""manage.py rollout: start a rollout (or follow one) and print its progress until it ends; exit 0 only
when it succeeded. The upgrades run on the Celery workers, as for the admin and the API."""

import time

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from ccp.errors import CCPError
from instances.preview import release_or_default
from upgrades.choices import UpgradeMode
from upgrades.rollouts.choices import RolloutStatus
from upgrades.rollouts.models import Rollout
from upgrades.rollouts.selectors import instances_for_rollout
from upgrades.rollouts.services import rollout_create


class Command(BaseCommand):
    help = (
        "Roll an image tag (--mode image_only --to TAG) or a release (--mode release --to VERSION) out to "
        "instances named by slug and/or chosen by --node/--tag/--status/--search; print progress until the "
        "rollout ends. Exit 0: succeeded; 1: halted or cancelled; 2: could not start. --follow ID follows "
        "a rollout already started."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slugs", nargs="*", help="Instances (slugs).")
        parser.add_argument("--mode", choices=[m.value for m in UpgradeMode], default=UpgradeMode.IMAGE_ONLY)
        parser.add_argument("--to", default="", help="Image tag (image_only, full) or release version.")
        parser.add_argument("--node", default="", help="Select the instances of this node.")
        parser.add_argument("--tag", default="", help="Select the instances with this image tag.")
        parser.add_argument("--status", default="", help="Select the instances with this status.")
        parser.add_argument("--search", default="", help="Select the instances whose name, slug or domain match.")
        parser.add_argument("--canary", type=int, default=1, help="Instances upgraded alone first (default 1).")
        parser.add_argument("--waves", default="rest", help='Waves after the canary, e.g. "1,10%%,50%%,rest".')
        parser.add_argument("--parallelism", type=int, default=0, help="At most this many at a time (0: no cap).")
        parser.add_argument("--per-node-limit", type=int, default=None, help="At most this many per node at a time.")
        parser.add_argument("--failure-budget", type=int, default=0, help="Failures tolerated (default 0).")
        parser.add_argument("--start-at", default="", help="Wait until then (ISO 8601, e.g. 2026-12-06T02:00Z).")
        parser.add_argument("--follow", type=int, default=None, help="Follow rollout ID instead of starting one.")
        parser.add_argument("--timeout", type=float, default=0, help="Stop following after this many seconds.")

    def handle(self, *args, **options) -> None:
        try:
            rollout = self._follow_or_start(options)
        except CCPError as exc:
            raise CommandError(exc.message, returncode=2)
        self.stdout.write(f"Rollout #{rollout.pk} to {rollout.target}: {rollout.items.count()} instance(s)")
        for item in rollout.items.filter(status="excluded").select_related("instance"):
            self.stdout.write(f"  excluded  {item.instance}: {item.error}")
        rollout = self._watch(rollout, options["timeout"])
        line = f"Rollout #{rollout.pk} {rollout.get_status_display().lower()}"
        if rollout.status == RolloutStatus.SUCCEEDED:
            self.stdout.write(self.style.SUCCESS(f"{line}. {rollout.reason}".strip()))
            return
        raise CommandError(f"{line}: {rollout.reason or 'still running'}", returncode=1)

    def _follow_or_start(self, options) -> Rollout:
        if options["follow"] is not None:
            rollout = Rollout.objects.filter(pk=options["follow"]).first()
            if rollout is None:
                raise CCPError(f"There is no rollout #{options['follow']}.")
            return rollout
        if not options["to"]:
            raise CCPError("Say what to roll out with --to (an image tag or a release version).")
        selection = {k: options[k] for k in ("node", "tag", "status", "search")}
        if not options["slugs"] and not any(selection.values()):
            raise CCPError("Name the instances (slugs) or select them with --node, --tag, --status or --search.")
        instances = list(instances_for_rollout(slugs=options["slugs"], **selection))
        missing = set(options["slugs"]) - {i.slug for i in instances}
        if missing:
            raise CCPError(f"No such instance (or not matching the filters): {', '.join(sorted(missing))}.")
        start_at = None
        if options["start_at"]:
            start_at = parse_datetime(options["start_at"].replace("Z", "+00:00"))
            if start_at is None or start_at.tzinfo is None:
                raise CCPError(f"--start-at {options['start_at']!r} is not a date and time with a time zone.")
        release = release_or_default(options["to"]) if options["mode"] != UpgradeMode.IMAGE_ONLY else None
        return rollout_create(
            instances=instances,
            mode=options["mode"],
            release=release,
            image_tag=options["to"] if options["mode"] != UpgradeMode.RELEASE else "",
            canary_size=options["canary"],
            waves=options["waves"],
            parallelism=options["parallelism"],
            per_node_limit=options["per_node_limit"],
            failure_budget=options["failure_budget"],
            start_at=start_at,
        )

    def _watch(self, rollout: Rollout, timeout: float) -> Rollout:
        """Print a line whenever the rollout or one of its instances changes, until the rollout ends."""
        seen: dict = {}
        deadline = time.monotonic() + timeout if timeout else None
        while True:
            rollout = Rollout.objects.get(pk=rollout.pk)
            key = ("rollout", rollout.status, rollout.current_wave)
            if seen.get("rollout") != key:
                seen["rollout"] = key
                self.stdout.write(f"[{rollout.get_status_display().lower()}] wave {rollout.current_wave}")
            for item in rollout.items.select_related("instance").exclude(status="excluded"):
                state = (item.status, item.upgrade_id)
                if seen.get(item.pk) != state:
                    seen[item.pk] = state
                    detail = f": {item.error}" if item.error else ""
                    upgrade = f" (upgrade #{item.upgrade_id})" if item.upgrade_id else ""
                    self.stdout.write(
                        f"  wave {item.wave} {item.instance}: {item.get_status_display()}{upgrade}{detail}"
                    )
            running = rollout.items.filter(status="running").exists()
            if (not rollout.is_active and not running) or (deadline and time.monotonic() > deadline):
                return rollout
            time.sleep(1)
