"""The fleet dashboard and the instance list at 5,000 instances: query count and time per page.

Target (issue 15): the same number of queries at 50 and at 5,000 instances, and each page under
100 ms (median of 7 requests) at 5,000.

The fleet: instances spread over 20 nodes, two upgrades and one backup each, 1 % flagged for
attention. Pages are fetched with Django's test client as a superuser (template rendering
included), against a throw-away database made next to DATABASE_URL's (PostgreSQL when it is set,
else SQLite). Run: `.venv/bin/python bench/bench_fleet.py [--instances 5000]`.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PAGES = {"dashboard": "/admin/fleet/", "instance list": "/admin/instances/instance/"}


def setup_django():
    os.environ["DJANGO_SETTINGS_MODULE"] = "ccp.test_settings"
    os.environ["ALLOWED_HOSTS"] = "testserver"
    import django

    django.setup()
    from django.db import connection

    # A database of its own (test_<name>), created and dropped by Django's test machinery.
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    return connection


def grow_fleet(total: int, start: int) -> None:
    """Add instances until there are `total` (bulk inserts: the fleet is data here, not operations)."""
    from django.utils import timezone

    from instances.choices import BackupLabel, BackupStatus
    from instances.models import Attention, Backup, Instance, Node
    from upgrades.models import Upgrade

    nodes = list(Node.objects.order_by("pk"))
    if not nodes:
        nodes = Node.objects.bulk_create(
            Node(name=f"node-{n}", address=f"127.0.1.{n + 1}", ssh_user="ccp", instance_root="/srv/ccp")
            for n in range(20)
        )
    now = timezone.now()
    instances = Instance.objects.bulk_create(
        Instance(
            name=f"tenant {i}",
            slug=f"tenant-{i:05d}",
            node=nodes[i % len(nodes)],
            install_dir=f"/srv/ccp/t{i}",
            compose_project=f"t{i}",
            observed_version="v1",
            health=["healthy", "unhealthy", "unknown"][i % 3],
        )
        for i in range(start, total)
    )
    Attention.objects.bulk_create(
        Attention(
            instance=inst, reason="Upgrade #1 failed and its rollback failed.", operation_kind="upgrade", operation_id=1
        )
        for i, inst in enumerate(instances, start)
        if i % 100 == 7
    )
    Upgrade.objects.bulk_create(
        Upgrade(
            instance=inst,
            mode="image_only",
            to_version=tag,
            target_tag=tag,
            status=status,
            started_at=now,
            finished_at=now,
        )
        for inst in instances
        for tag, status in (("v1", "succeeded"), ("v2", "rolled_back"))
    )
    Backup.objects.bulk_create(
        Backup(instance=inst, label=BackupLabel.SCHEDULED, status=BackupStatus.SUCCEEDED, size_bytes=1, finished_at=now)
        for inst in instances
    )


def measure(client, url: str, runs: int = 7) -> tuple[float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries = [], 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
        queries = len(captured.captured_queries)
    return statistics.median(times), queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=int(os.environ.get("BENCH_FLEET_INSTANCES", "5000")))
    parser.add_argument("--small", type=int, default=50, help="the fleet size the query count is compared with")
    parser.add_argument("--target-ms", type=float, default=100.0)
    args = parser.parse_args()

    connection = setup_django()
    from django.contrib.auth.models import User
    from django.test import Client

    try:
        user = User.objects.create_superuser("bench", password="x")  # noqa: S106 - a throw-away database
        client = Client()
        client.force_login(user)
        grow_fleet(args.small, 0)
        small = {name: measure(client, url) for name, url in PAGES.items()}
        grow_fleet(args.instances, args.small)
        large = {name: measure(client, url) for name, url in PAGES.items()}
        failed = False
        print(f"database: {connection.vendor}")
        for name in PAGES:
            (_, q_small), (ms_large, q_large) = small[name], large[name]
            ok = q_small == q_large and ms_large * 1000 < args.target_ms
            failed |= not ok
            print(
                f"RATIO {name}: {q_small} queries at {args.small} instances, {q_large} at {args.instances}; "
                f"{ms_large * 1000:.1f} ms at {args.instances} (ratio to the {args.target_ms:.0f} ms target "
                f"{ms_large * 1000 / args.target_ms:.2f}) {'meets' if ok else 'MISSES'} the target"
            )
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
