"""Quick upgrade overhead: CCP's image_only upgrade vs the bare commands over one SSH session.

Target (issues 5 and 15): median over 5 pairs of (CCP duration / bare duration) ≤ 1.3, for a tenant
with four small protected files and for tenants whose mkdocs/ holds 300 MB / 1,600 files and
2 GB / 20,000 files (--sizes MB:FILES,…, or BENCH_CONTENT_SIZES; 0:0 is the small tenant).

Both sides make the same change to the same tenant on a real sshd node and docker engine:
- bare: one `ssh` session running `sed IMAGE_TAG` + `docker compose pull` + `docker compose up -d --wait`;
- CCP: `upgrade_run` of an image_only Upgrade (every step recorded in the database, protected paths
  listed before and after, .env kept, health URLs probed), in this process, no Celery queueing.

Needs the testbed (run `make testbed` as root).
Run: `.venv/bin/python bench/bench_upgrade.py [--pairs 5] [--sizes 0:0,300:1600,2048:20000]`.
"""

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def setup_django(workdir: Path) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "ccp.test_settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ.setdefault("CCP_VAR_DIR", str(workdir))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def bare_upgrade(sshd, tenant, tag: str) -> float:
    remote = " && ".join(
        [
            f"cd {shlex.quote(str(tenant.path))}",
            f"sed -i {shlex.quote(f's/^IMAGE_TAG=.*/IMAGE_TAG={tag}/')} .env",
            "docker compose pull --quiet",
            "docker compose up --detach --wait",
        ]
    )
    argv = [
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
    ]
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, timeout=300)
    return time.perf_counter() - started


def ccp_upgrade(tenant, tag: str) -> float:
    from upgrades.choices import UpgradeMode, UpgradeStatus
    from upgrades.services import upgrade_request, upgrade_run

    started = time.perf_counter()
    upgrade = upgrade_request(instance=tenant.instance, mode=UpgradeMode.IMAGE_ONLY, image_tag=tag, enqueue=False)
    status = upgrade_run(upgrade_id=upgrade.pk)
    elapsed = time.perf_counter() - started
    if status != UpgradeStatus.SUCCEEDED:
        upgrade.refresh_from_db()
        raise SystemExit(f"CCP upgrade to {tag} ended {status}: {upgrade.error}")
    tenant.instance.refresh_from_db()
    return elapsed


def fill_content(path: Path, megabytes: int, files: int, user: str) -> None:
    """Replace mkdocs/ with `files` files of `megabytes` MB in all, in nested sections (as a real docs
    tree), owned by the node account; then read it once, so the page cache is warm as in the issue."""
    mkdocs = path / "mkdocs"
    shutil.rmtree(mkdocs, ignore_errors=True)
    mkdocs.mkdir()
    (mkdocs / "mkdocs.yml").write_text("site_name: Benchmark tenant\n")
    if files:
        block = os.urandom(1 << 20)
        size = megabytes * (1 << 20) // files
        for n in range(files):
            folder = mkdocs / "docs" / f"section-{n % 40:02d}" / f"part-{n % 7}"
            folder.mkdir(parents=True, exist_ok=True)
            start, data = (n * 7919) % len(block), bytearray()
            while len(data) < size:  # different bytes per file, no 2 GB in memory
                data += block[start : start + size - len(data)]
                start = 0
            (folder / f"page-{n:05d}.md").write_bytes(data)
    subprocess.run(["chown", "-R", f"{user}:{user}", str(mkdocs)], check=True)
    subprocess.run(["tar", "-C", str(path), "-cf", "/dev/null", "mkdocs"], check=True)


def run_pairs(node_sshd, tenant, pairs: int) -> list[float]:
    ratios = []
    for pair in range(pairs):
        # Each side moves the tenant to the other tag (v1 -> v2 -> v1 ...): a real change every time.
        first, second = "v2", "v1"
        bare = bare_upgrade(node_sshd, tenant, first)
        ccp = ccp_upgrade(tenant, second)
        ratios.append(ccp / bare)
        print(f"  pair {pair + 1}: bare {bare:.2f} s ({first}), CCP {ccp:.2f} s ({second}), ratio {ccp / bare:.2f}")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--target", type=float, default=1.3)
    parser.add_argument(
        "--sizes",
        default=os.environ.get("BENCH_CONTENT_SIZES", "0:0,300:1600,2048:20000"),
        help="protected content per run, MB:FILES, comma-separated",
    )
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in size.split(":")) for size in args.sizes.split(",") if size]

    workdir = Path(tempfile.mkdtemp(prefix="ccp-bench-upgrade-"))
    setup_django(workdir)
    from instances.models import Instance, Node
    from instances.services import instance_save
    from tests.testbed import images, sshd
    from tests.testbed.tenant import Tenant, free_port, provision
    from upgrades.models import Release

    images.ensure_images()
    node_sshd = sshd.start_node()
    path = sshd.make_workdir(prefix="bench")
    try:
        node = Node(name="bench", instance_root=str(path.parent), **node_sshd.node_fields())
        node.save()
        Release.objects.create(
            version="v1", image_tag="v1", template_set="testbed", registry=images.REGISTRY, is_default=True
        )
        slug = f"bench{uuid.uuid4().hex[:6]}"
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

        failed = False
        for megabytes, files in sizes:
            if files:
                fill_content(path, megabytes, files, node_sshd.user)
            what = f"{megabytes} MB / {files} files of protected content" if files else "4 small protected files"
            print(f"tenant with {what}:")
            median = statistics.median(run_pairs(node_sshd, tenant, args.pairs))
            ok = median <= args.target
            failed |= not ok
            print(
                f"RATIO Quick upgrade CCP/bare, {what}: {median:.2f} "
                f"({'meets' if ok else 'MISSES'} the target ≤ {args.target})"
            )
        if failed:
            raise SystemExit(1)
    finally:
        subprocess.run(
            ["docker", "compose", "--project-name", slug, "down", "--timeout", "1"], cwd=path, capture_output=True
        )
        node_sshd.stop()
        sshd.remove_workdir(path)


if __name__ == "__main__":
    main()
