"""Operations on several nodes at once, with the worker `make run` starts (its Procfile line, the
embedded SQLite database and the file-system broker), on real sshd nodes and the docker engine.

1. Four Quick upgrades on four nodes requested at once vs the four bare commands run in parallel
   (`ssh node 'sed IMAGE_TAG … && docker compose pull && docker compose up -d --wait'`), median of
   --pairs. Target: ≤ 1.3×.
2. Preview of 40 instances over 4 nodes from the admin action (POST the action, follow the page
   until the previews are shown) vs one instance's preview page × 40. Target: ≤ 0.33×. Measured on
   loopback, then with every node behind a proxy that adds --rtt-ms (50) of round trip.

Needs the testbed (`make testbed` as root). Sizes: --nodes, --preview-instances (or BENCH_PREVIEW_INSTANCES).
Run: `.venv/bin/python bench/bench_fleet_ops.py [--pairs 3]`.
"""

import argparse
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from latency_proxy import LatencyProxy  # noqa: E402 - bench/ is the script's own directory


def make_run_env(scratch: Path) -> dict:
    """What `make run` gives the worker when nothing is configured: SQLite and the file-system broker
    under its var/ directory (here a scratch one), DEBUG on."""
    from cryptography.fernet import Fernet

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        {
            "DEBUG": "1",
            "CCP_VAR_DIR": str(scratch / "var"),
            "SECRET_KEY": "bench-only",
            "CCP_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "LOG_LEVEL": "WARNING",
            "ALLOWED_HOSTS": "testserver",
            "CCP_HEALTH_TIMEOUT": "60",
            "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}",
        }
    )
    return env


def start_worker(env: dict) -> subprocess.Popen:
    """The Procfile's worker line, as honcho runs it under `make run`."""
    line = next(line for line in (REPO / "Procfile").read_text().splitlines() if line.startswith("worker:"))
    command = line.split(":", 1)[1].strip()
    log = open(Path(env["CCP_VAR_DIR"]) / "worker.log", "w")  # noqa: SIM115 - lives as long as the worker
    worker = subprocess.Popen(
        ["sh", "-c", command], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if "ready." in (Path(env["CCP_VAR_DIR"]) / "worker.log").read_text():
            return worker
        time.sleep(0.2)
    raise SystemExit("the worker did not start; see " + str(Path(env["CCP_VAR_DIR"]) / "worker.log"))


def bare_upgrade(sshd, path: Path, project: str, tag: str) -> None:
    remote = " && ".join(
        [
            f"cd {shlex.quote(str(path))}",
            f"sed -i {shlex.quote(f's/^IMAGE_TAG=.*/IMAGE_TAG={tag}/')} .env",
            f"docker compose --project-name {shlex.quote(project)} pull --quiet",
            f"docker compose --project-name {shlex.quote(project)} up --detach --wait",
        ]
    )
    subprocess.run(
        [
            "ssh",
            "-i",
            sshd.key_path,
            "-p",
            str(sshd.port),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            f"{sshd.user}@{sshd.host}",
            remote,
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )


def wait_upgrades(ids: list[int], timeout: float = 300) -> list:
    from upgrades.models import Upgrade

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = list(Upgrade.objects.filter(pk__in=ids))
        if all(row.is_final for row in rows):
            return rows
        time.sleep(0.05)
    raise SystemExit(f"upgrades {ids} did not finish in {timeout} s")


def upgrades_benchmark(tenants, nodes, pairs: int, target: float) -> bool:
    from upgrades.choices import UpgradeMode, UpgradeStatus
    from upgrades.services import upgrade_request

    ratios = []
    for pair in range(pairs):
        started = time.perf_counter()
        with ThreadPoolExecutor(len(tenants)) as pool:
            list(
                pool.map(
                    lambda t: bare_upgrade(nodes[t.instance.node.name], t.path, t.instance.compose_project, "v2"),
                    tenants,
                )
            )
        bare = time.perf_counter() - started
        started = time.perf_counter()
        ids = [upgrade_request(instance=t.instance, mode=UpgradeMode.IMAGE_ONLY, image_tag="v1").pk for t in tenants]
        rows = wait_upgrades(ids)
        ccp = time.perf_counter() - started
        failed = [f"#{row.pk}: {row.status} {row.error}" for row in rows if row.status != UpgradeStatus.SUCCEEDED]
        if failed:
            raise SystemExit("CCP upgrades failed: " + "; ".join(failed))
        ratios.append(ccp / bare)
        print(
            f"  pair {pair + 1}: {len(tenants)} bare upgrades in parallel {bare:.2f} s (→ v2), "
            f"{len(tenants)} CCP upgrades {ccp:.2f} s (→ v1), ratio {ccp / bare:.2f}"
        )
    ratio = statistics.median(ratios)
    ok = ratio <= target
    print(
        f"RATIO four Quick upgrades on four nodes, CCP (make run's worker) / bare in parallel: {ratio:.2f} "
        f"({'meets' if ok else 'MISSES'} the target ≤ {target})"
    )
    return ok


def preview_benchmark(instances, target: float, where: str) -> bool:
    from django.contrib.auth.models import User
    from django.test import Client

    from instances.models import PreviewRun

    user = User.objects.filter(username="bench").first() or User.objects.create_superuser("bench", password="x")  # noqa: S106
    client = Client()
    client.force_login(user)
    one = instances[0]
    singles = []
    for _ in range(5):
        started = time.perf_counter()
        response = client.get(f"/admin/instances/instance/{one.pk}/preview/")
        singles.append(time.perf_counter() - started)
        assert response.status_code == 200 and b"Preview hash" in response.content
    single = statistics.median(singles)

    started = time.perf_counter()
    queued = client.post(
        "/admin/instances/instance/", {"action": "preview_release", "_selected_action": [i.pk for i in instances]}
    )
    assert queued.status_code == 302, queued.status_code
    while True:
        page_started = time.perf_counter()
        page = client.get(queued.url)
        if b"Preview hash" in page.content or b"errornote" in page.content:
            break
        time.sleep(0.05)  # the page itself refreshes every second; polling faster only measures sooner
    many = time.perf_counter() - started
    page_time = time.perf_counter() - page_started
    run = PreviewRun.objects.order_by("-pk").first()
    worker_time = (run.finished_at - run.created_at).total_seconds()
    errors = [r["error"] for r in run.results.values() if "error" in r]
    if errors:
        raise SystemExit(f"previews failed: {errors[:3]}")
    ratio = many / (single * len(instances))
    ok = ratio <= target
    print(
        f"  one instance's preview page: {single * 1000:.0f} ms (median of 5); {len(instances)} instances "
        f"from the admin action: {many:.2f} s (vs {single * len(instances):.2f} s one after another; "
        f"queued and previewed by the worker in {worker_time:.2f} s, result page {page_time * 1000:.0f} ms)"
    )
    print(
        f"RATIO preview of {len(instances)} instances over the nodes ({where}) / one preview × {len(instances)}: "
        f"{ratio:.2f} ({'meets' if ok else 'MISSES'} the target ≤ {target})"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--preview-instances", type=int, default=int(os.environ.get("BENCH_PREVIEW_INSTANCES", "40")))
    parser.add_argument("--upgrade-target", type=float, default=1.3)
    parser.add_argument("--rtt-ms", type=float, default=50.0, help="round trip of the far nodes (preview)")
    parser.add_argument("--only", choices=["upgrades", "preview"], help="run one of the two benchmarks")
    parser.add_argument("--preview-target", type=float, default=0.33)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="ccp-bench-fleet-"))
    env = make_run_env(scratch)
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
    try:
        nodes = {}
        for n in range(args.nodes):
            node_sshd = sshd.start_node()
            started.append(node_sshd)
            node = Node(name=f"bench-{n}", instance_root="/srv/ccp-testbed", **node_sshd.node_fields())
            node.save()
            nodes[node.name] = node_sshd
        Release.objects.create(
            version="v1", image_tag="v1", template_set="testbed", registry=images.REGISTRY, is_default=True
        )
        node_rows = list(Node.objects.order_by("name"))
        for node in node_rows:  # one running tenant per node for the upgrades
            path = sshd.make_workdir(prefix="bench")
            workdirs.append(path)
            slug = f"b{uuid.uuid4().hex[:8]}"
            instance = instance_save(
                instance=Instance(
                    name=slug,
                    slug=slug,
                    node=node,
                    install_dir=str(path),
                    compose_project=slug,
                    ports={name: free_port() for name in ("web", "api", "docs", "extra")},
                )
            )
            tenant = Tenant(instance=instance, node=node, path=path)
            provision(tenant, tag="v1")
            tenants.append(tenant)
        previewed = [t.instance for t in tenants]
        while len(previewed) < args.preview_instances:  # more tenants with files only, spread over the nodes
            node = node_rows[len(previewed) % len(node_rows)]
            path = sshd.make_workdir(prefix="bench")
            workdirs.append(path)
            slug = f"p{uuid.uuid4().hex[:8]}"
            instance = instance_save(
                instance=Instance(
                    name=slug,
                    slug=slug,
                    node=node,
                    install_dir=str(path),
                    compose_project=slug,
                    ports={name: free_port() for name in ("web", "api", "docs", "extra")},
                )
            )
            write_files(instance)
            previewed.append(instance)

        worker = start_worker(env)
        print(f"worker: {worker_banner(env)}")
        ok = True
        if args.only != "preview":
            ok = upgrades_benchmark(tenants, nodes, args.pairs, args.upgrade_target)
        if args.only != "upgrades":
            # On loopback a preview is mostly CPU (render and diff, ~15 ms); what the worker's
            # parallelism is for is the network's round trips: measured again through a proxy that
            # gives every node --rtt-ms of round trip.
            preview_benchmark(previewed, args.preview_target, "loopback")
            for node in node_rows:
                proxy = LatencyProxy(node.address, node.ssh_port, args.rtt_ms)
                proxies.append(proxy)
                Node.objects.filter(pk=node.pk).update(address="127.0.0.1", ssh_port=proxy.port)
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
    if not ok:
        raise SystemExit(1)


def write_files(instance) -> None:
    """The release's files on the node, one of them edited by hand (so the preview has a diff)."""
    import posixpath

    from instances.drivers import driver_for
    from instances.preview import instance_render

    _, _, files = instance_render(instance=instance)
    driver = driver_for(instance.node)
    for relative, rendered in files.items():
        target = posixpath.join(instance.install_dir, relative)
        driver.run(["mkdir", "-p", posixpath.dirname(target)], check=True)
        content = (
            rendered.content.replace(b"greeting=hello", b"greeting=edited")
            if relative.endswith(".conf")
            else rendered.content
        )
        driver.write_file(target, content, mode=rendered.mode)


def worker_banner(env: dict) -> str:
    text = (Path(env["CCP_VAR_DIR"]) / "worker.log").read_text()
    line = next((line for line in text.splitlines() if "concurrency:" in line), "")
    return line.strip().lstrip(".> ").strip() or "started"


if __name__ == "__main__":
    main()
