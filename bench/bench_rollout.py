"""Rollouts over several nodes, with the worker `make run` starts (its Procfile line, SQLite, the
file-system broker), on real sshd nodes and the docker engine.

1. Preview of 40 instances over 4 nodes through the rollout machinery (`rollout_check_instances`: what
   creating a release rollout computes, nodes in parallel, CCP_PREVIEW_PER_NODE at a time per node) vs
   the same previews one after another. Target: ≥ 3× faster. Measured on loopback, then with every node
   behind a proxy adding --rtt-ms (50) of round trip (on loopback a preview is mostly CPU, shared under
   the GIL; the parallelism is for the network's round trips).
2. A Quick-upgrade rollout of 8 instances over 4 nodes (no canary, one wave, per-node limit 1): its total
   time (created → succeeded) vs the sum of the same 8 upgrades' times run one at a time. Target ≤ 0.35×
   (the floor is 0.25×: two upgrades per node, one at a time). Measured on loopback, then with every node
   behind a proxy adding --rtt-ms of round trip, as a panel reaches nodes on other hosts. On loopback the
   four "nodes" are one machine: the 8 tenants' 24 containers probing their health every second take one
   of its two cores before anything is upgraded (printed), and four upgrades at once share the other; the
   bench prints that background load and how long an upgrade took in the rollout against alone, so the
   machine's share and the rollout machinery's share (the gap between two upgrades on a node) can be told
   apart. The target is checked on the round-trip run; the loopback figure is printed beside it.

The worker is the `Procfile`'s (threads pool of 20). With DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL
(Redis) set, it runs against a throw-away database next to DATABASE_URL's and that broker, as in
production; without them, on `make run`'s SQLite and file-system broker (ccp/broker_fs.py: each message
written whole, so the frequent messages of a rollout's driver never reach a worker half-written).

Needs the testbed (`make testbed` as root). Run: `.venv/bin/python bench/bench_rollout.py [--nodes 4]`.
"""

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_fleet_ops import make_run_env, start_worker, worker_banner, write_files  # noqa: E402
from latency_proxy import LatencyProxy  # noqa: E402 - bench/ is the script's own directory


def preview_benchmark(instances, target: float, where: str) -> bool:
    from instances.preview_runs import preview_block
    from upgrades.choices import UpgradeMode
    from upgrades.models import Release
    from upgrades.rollouts.services import rollout_check_instances

    release = Release.objects.get(version="v1")
    rollout_check_instances(instances=instances[:4], mode=UpgradeMode.RELEASE, release=release)  # connections up
    started = time.perf_counter()
    for instance in instances:
        block = preview_block(instance=instance, release=release)
        assert block.report is not None, block.error
    serial = time.perf_counter() - started
    started = time.perf_counter()
    checks = rollout_check_instances(instances=instances, mode=UpgradeMode.RELEASE, release=release)
    parallel = time.perf_counter() - started
    excluded = [c.excluded for c in checks if c.excluded]
    if excluded:
        raise SystemExit(f"previews failed: {excluded[:3]}")
    ratio = serial / parallel
    ok = ratio >= target
    print(
        f"  {len(instances)} previews one after another {serial:.2f} s; through the rollout machinery {parallel:.2f} s"
    )
    print(
        f"RATIO preview of {len(instances)} instances over the nodes ({where}), one after another / rollout: "
        f"{ratio:.2f}× ({'meets' if ok else 'MISSES'} the target ≥ {target}×)"
    )
    return ok


def wait(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise SystemExit(f"{what} did not finish in {timeout} s")


def busy_cores(seconds: float) -> float:
    """How many of the machine's cores were busy, on average, over `seconds` from now (from /proc/stat)."""

    def used() -> tuple[int, int]:
        fields = list(map(int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]))
        return sum(fields) - fields[3] - fields[4], sum(fields)

    (busy0, all0), _ = used(), time.sleep(seconds)
    busy1, all1 = used()
    return (busy1 - busy0) / (all1 - all0) * os.cpu_count()


def rollout_benchmark(tenants, target: float, where: str) -> bool:
    from upgrades.choices import UpgradeMode, UpgradeStatus
    from upgrades.models import Upgrade
    from upgrades.rollouts.choices import RolloutStatus
    from upgrades.rollouts.models import Rollout
    from upgrades.rollouts.services import rollout_create
    from upgrades.services import upgrade_request

    print(f"  {where}: the {len(tenants)} idle tenants keep {busy_cores(3):.2f} of {os.cpu_count()} cores busy")
    singles = []
    for tenant in tenants:  # v1 → v2, one at a time
        started = time.perf_counter()
        upgrade = upgrade_request(instance=tenant.instance, mode=UpgradeMode.IMAGE_ONLY, image_tag="v2")
        row = wait(
            lambda pk=upgrade.pk: Upgrade.objects.filter(
                pk=pk, status__in=["succeeded", "failed", "rolled_back"]
            ).first(),
            300,
            "an upgrade",
        )
        if row.status != UpgradeStatus.SUCCEEDED:
            raise SystemExit(f"upgrade #{row.pk} {row.status}: {row.error}")
        singles.append(time.perf_counter() - started)
    started = time.perf_counter()
    rollout = rollout_create(
        instances=[t.instance for t in tenants],
        mode=UpgradeMode.IMAGE_ONLY,
        image_tag="v1",
        canary_size=0,
        waves="rest",
        per_node_limit=1,
    )
    done = wait(
        lambda: Rollout.objects.filter(pk=rollout.pk).exclude(status__in=["scheduled", "running"]).first(),
        600,
        "the rollout",
    )
    total = time.perf_counter() - started
    if done.status != RolloutStatus.SUCCEEDED:
        raise SystemExit(f"rollout #{done.pk} {done.status}: {done.reason}")
    ratio = total / sum(singles)
    ok = ratio <= target
    rows = list(Upgrade.objects.filter(rollout_items__rollout=done).select_related("instance").order_by("created_at"))
    durations = [(row.finished_at - row.created_at).total_seconds() for row in rows]
    gaps = []
    for node_id in {row.instance.node_id for row in rows}:
        on_node = [row for row in rows if row.instance.node_id == node_id]
        gaps += [(b.created_at - a.finished_at).total_seconds() for a, b in zip(on_node, on_node[1:], strict=False)]
    print(
        f"  in the rollout an upgrade took {sum(durations) / len(durations):.1f} s on average (alone: "
        f"{sum(singles) / len(singles):.1f} s: the machine's cores are shared by the parallel ones); the next "
        f"upgrade on a node was requested {max(gaps, default=0) * 1000:.0f} ms at most after the one before ended"
    )
    print(
        f"  8 single Quick upgrades one at a time: {sum(singles):.2f} s ({', '.join(f'{s:.1f}' for s in singles)}); "
        f"the rollout of the 8 over {len({t.instance.node_id for t in tenants})} nodes: {total:.2f} s"
    )
    print(
        f"RATIO Quick-upgrade rollout of {len(tenants)} instances (per-node limit 1, {where}) / the sum of the "
        f"single upgrades: {ratio:.2f} ({'meets' if ok else 'MISSES'} the target ≤ {target}; the floor is 0.25)"
    )
    return ok


def behind_proxies(nodes, rtt_ms: float, proxies: list) -> None:
    """Put every node behind a LatencyProxy adding `rtt_ms` of round trip; connections are reopened."""
    from instances.drivers import close_all
    from instances.models import Node

    for node in nodes:
        proxy = LatencyProxy(node.address, node.ssh_port, rtt_ms)
        proxies.append(proxy)
        Node.objects.filter(pk=node.pk).update(address="127.0.0.1", ssh_port=proxy.port)
    close_all()


def throwaway_database(url: str) -> str:
    """A fresh database next to `url`'s, on the same server; returns its URL."""
    base, _, name = url.rpartition("/")
    bench = f"{name.split('?')[0]}_bench_rollout"
    drop_database(f"{base}/{bench}")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(bench)))
    return f"{base}/{bench}"


def drop_database(url: str) -> None:
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--preview-instances", type=int, default=int(os.environ.get("BENCH_PREVIEW_INSTANCES", "40")))
    parser.add_argument("--upgrade-instances", type=int, default=8)
    parser.add_argument("--rtt-ms", type=float, default=50.0)
    parser.add_argument("--only", choices=["preview", "rollout"])
    parser.add_argument("--preview-target", type=float, default=3.0)
    parser.add_argument("--rollout-target", type=float, default=0.35)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="ccp-bench-rollout-"))
    database_url, broker_url = os.environ.get("DATABASE_URL", ""), os.environ.get("CELERY_BROKER_URL", "")
    env = make_run_env(scratch)
    throwaway = None
    if database_url.startswith("postgres") and broker_url.startswith("redis"):
        throwaway = throwaway_database(database_url)
        env.update({"DATABASE_URL": throwaway, "CELERY_BROKER_URL": broker_url})
    env["CCP_ROLLOUT_TICK_SECONDS"] = "0.5"
    env["CCP_SSH_KEY_DIR"] = os.environ.get("CCP_TESTBED_STATE", "/run/ccp-testbed")  # the testbed's key files
    os.environ.clear()
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "ccp.settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from instances.models import Instance, Node
    from instances.services import instance_save
    from tests.testbed import images, sshd
    from tests.testbed.tenant import Tenant, free_port, provision
    from upgrades.models import Release

    images.ensure_images()
    started, workdirs, tenants, worker, proxies = [], [], [], None, []

    taken: set[int] = set()

    def unused_port() -> int:
        """A free port no other bench instance was given (files-only instances do not bind theirs)."""
        while (port := free_port()) in taken:
            pass
        taken.add(port)
        return port

    def new_instance(node, prefix: str):
        path = sshd.make_workdir(prefix="bench")
        workdirs.append(path)
        slug = f"{prefix}{uuid.uuid4().hex[:8]}"
        instance = instance_save(
            instance=Instance(
                name=slug,
                slug=slug,
                node=node,
                install_dir=str(path),
                compose_project=slug,
                ports={name: unused_port() for name in ("web", "api", "docs", "extra")},
            )
        )
        return instance, path

    try:
        for n in range(args.nodes):
            node_sshd = sshd.start_node()
            started.append(node_sshd)
            Node(name=f"bench-{n}", instance_root="/srv/ccp-testbed", **node_sshd.node_fields()).save()
        Release.objects.create(
            version="v1", image_tag="v1", template_set="testbed", registry=images.REGISTRY, is_default=True
        )
        node_rows = list(Node.objects.order_by("name"))
        ok = True
        if args.only != "preview":
            for n in range(args.upgrade_instances):  # running tenants, spread over the nodes
                node = node_rows[n % len(node_rows)]
                instance, path = new_instance(node, "b")
                tenant = Tenant(instance=instance, node=node, path=path)
                provision(tenant, tag="v1")
                tenants.append(tenant)
            worker = start_worker(env)
            print(f"worker: {worker_banner(env)}")
            rollout_benchmark(tenants, args.rollout_target, "loopback")
            behind_proxies(node_rows, args.rtt_ms, proxies)
            for tenant in tenants:
                tenant.instance.refresh_from_db()
            where = f"{args.rtt_ms:.0f} ms round trip"
            ok = rollout_benchmark(tenants, args.rollout_target, where) and ok
            for node in node_rows:  # back to direct connections for the previews
                Node.objects.filter(pk=node.pk).update(address=node.address, ssh_port=node.ssh_port)
            for proxy in proxies:
                proxy.close()
            proxies.clear()
        if args.only != "rollout":
            previewed = []
            for n in range(args.preview_instances):  # files only, one edited by hand (a diff to show)
                instance, _ = new_instance(node_rows[n % len(node_rows)], "p")
                write_files(instance)
                previewed.append(instance)
            preview_benchmark(previewed, args.preview_target, "loopback")
            behind_proxies(node_rows, args.rtt_ms, proxies)
            previewed = list(Instance.objects.select_related("node").filter(pk__in=[i.pk for i in previewed]))
            ok = preview_benchmark(previewed, args.preview_target, f"{args.rtt_ms:.0f} ms round trip") and ok
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=60)
        for tenant in tenants:
            tenant.remove_containers()
        for proxy in proxies:
            proxy.close()
        for node_sshd in started:
            node_sshd.stop()
        for path in workdirs:
            sshd.remove_workdir(path)
        shutil.rmtree(scratch, ignore_errors=True)
        if throwaway:
            from django.db import connections

            connections.close_all()
            drop_database(throwaway)
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
