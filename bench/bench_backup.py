"""Benchmark: a CCP backup of a 500 MB mkdocs tree over SSH against `ssh node tar czf - … > file`.

Target (issue 15): on a node with pigz (CCP then compresses with every core; tests/testbed/install.sh
installs it), at least 1.6× the throughput of gzip as CCP used it before — measured as the
baseline below, which is what a CCP backup cost until then (0.96× of it).

Setup (not timed): start an sshd node on 127.0.0.x (tests/testbed, needs root and the `ccpnode`
account), write a tenant whose mkdocs/ holds ~500 MB of mixed files (markdown pages, compressible
JSON/CSV data, incompressible images and PDFs, in many sizes), a throw-away database with the node
and instance, and warm the page cache with one read of the tree.

Timed, best of --runs each, alternating:
- baseline: OpenSSH's client running `tar -C DIR -czf - -- mkdocs` on the node into a local file;
- CCP: `backup_request` + `backup_run` of the instance (what `manage.py backup SLUG` does): every
  archive streamed through the SSH driver and hashed on the way, host state, MANIFEST.txt, rename.

Prints both times and throughputs (tree bytes / second) and their ratio; exits 1 below --min-ratio.

    .venv/bin/python bench/bench_backup.py [--size-mb 500] [--runs 3] [--min-ratio 0.8]
"""

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.testbed.sshd import make_workdir, remove_workdir, start_node  # noqa: E402

WORDS = (
    "campaign volunteer donation newsletter event canvass district precinct region turnout "
    "signup phone bank rally message supporter organiser schedule policy page guide"
).split()


def _text(rng: random.Random, size: int) -> bytes:
    lines, total = [], 0
    while total < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16))) + f" {rng.randint(0, 10**6)}.\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


def write_mkdocs_tree(base: Path, total_bytes: int, seed: int = 7) -> tuple[int, int]:
    """~total_bytes of mixed files under base/mkdocs; returns (files, bytes)."""
    rng = random.Random(seed)
    text_block = _text(rng, 4 * 1024 * 1024)
    kinds = [  # (share of bytes, directory, extension, min size, max size, compressible)
        (0.15, "docs", "md", 2_000, 60_000, True),
        (0.15, "data", "json", 50_000, 2_000_000, True),
        (0.35, "assets/images", "png", 20_000, 3_000_000, False),
        (0.35, "assets/files", "pdf", 500_000, 20_000_000, False),
    ]
    files = written = 0
    for share, directory, ext, low, high, compressible in kinds:
        budget = int(total_bytes * share)
        folder = base / "mkdocs" / directory
        while budget > 0:
            size = min(budget, rng.randint(low, high))
            sub = folder / f"section-{files % 23:02d}"
            sub.mkdir(parents=True, exist_ok=True)
            if compressible:
                start = rng.randrange(0, len(text_block) - size) if size < len(text_block) else 0
                data = (text_block * (size // len(text_block) + 1))[start : start + size]
            else:
                data = os.urandom(size)
            (sub / f"file-{files:05d}.{ext}").write_bytes(data)
            files, written, budget = files + 1, written + size, budget - size
    (base / "mkdocs" / "mkdocs.yml").write_text("site_name: Benchmark tenant\n")
    (base / ".env").write_text("COMPOSE_PROJECT_NAME=bench\n")
    (base / "docker-compose.yml").write_text("services: {}\n")
    return files, written


def give_to(path: Path, user: str) -> None:
    subprocess.run(["chown", "-R", f"{user}:{user}", str(path)], check=True)


def setup_django(scratch: Path) -> None:
    from cryptography.fernet import Fernet

    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "ccp.settings",
            "CCP_VAR_DIR": str(scratch / "var"),
            "DATABASE_URL": f"sqlite:///{scratch / 'bench.sqlite3'}",
            "BACKUP_ROOT": str(scratch / "backups"),
            "SECRET_KEY": "bench-only",
            "CCP_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "CELERY_BROKER_URL": "memory://",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def make_instance(node, workdir: Path):
    from instances.models import Instance, Node

    row = Node(
        name="bench-node",
        driver="ssh",
        address=node.host,
        ssh_port=node.port,
        ssh_user=node.user,
        instance_root=str(workdir.parent),
    )
    row.set_private_key(node.client_key)
    row.save()
    return Instance.objects.create(
        name="bench", slug="bench", node=row, install_dir=str(workdir), compose_project="bench", ports={}
    )


def run_baseline(node, workdir: Path, out: Path) -> float:
    argv = [
        "ssh",
        "-q",
        "-i",
        node.key_path,
        "-p",
        str(node.port),
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        f"{node.user}@{node.host}",
        "tar",
        "-C",
        str(workdir),
        "-czf",
        "-",
        "--",
        "mkdocs",
    ]
    started = time.perf_counter()
    with open(out, "wb") as f:
        subprocess.run(argv, stdout=f, check=True)
        f.flush()
        os.fsync(f.fileno())
    elapsed = time.perf_counter() - started
    out.unlink()
    return elapsed


def run_ccp(instance) -> tuple[float, int, str]:
    from instances.backups.services import backup_request, backup_run
    from instances.models import Backup

    started = time.perf_counter()
    backup = backup_request(instance=instance, enqueue=False)
    status = backup_run(backup_id=backup.pk)
    elapsed = time.perf_counter() - started
    backup = Backup.objects.get(pk=backup.pk)
    if status != "succeeded":
        raise SystemExit(f"CCP backup failed: {backup.error}")
    from django.conf import settings

    shutil.rmtree(Path(settings.BACKUP_ROOT) / backup.location)
    backup.delete()
    return elapsed, backup.size_bytes, backup.location


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=int(os.environ.get("BENCH_BACKUP_MB", "500")))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--min-ratio", type=float, default=1.6)
    args = parser.parse_args()

    node = start_node()
    workdir = make_workdir(prefix="bench")
    scratch = Path(tempfile.mkdtemp(prefix="ccp-bench-backup-"))
    try:
        print(f"node: sshd on {node.host}:{node.port} as {node.user}; tenant in {workdir}")
        files, tree_bytes = write_mkdocs_tree(workdir, args.size_mb * 1024 * 1024)
        give_to(workdir, node.user)
        print(f"mkdocs tree: {files} files, {tree_bytes / 1e6:.0f} MB (text, JSON, images, PDFs)")
        subprocess.run(["tar", "-C", str(workdir), "-cf", "/dev/null", "mkdocs"], check=True)  # warm the cache
        setup_django(scratch)
        instance = make_instance(node, workdir)

        baseline, ccp, archive = [], [], 0
        for run in range(1, args.runs + 1):
            baseline.append(run_baseline(node, workdir, scratch / "baseline.tar.gz"))
            elapsed, archive, _ = run_ccp(instance)
            ccp.append(elapsed)
            print(f"run {run}: ssh tar czf {baseline[-1]:.2f} s, CCP backup {elapsed:.2f} s")
        best_baseline, best_ccp = min(baseline), min(ccp)
        ratio = best_baseline / best_ccp  # = CCP throughput / baseline throughput
        print(
            f"baseline `ssh node tar czf - … > file`: {best_baseline:.2f} s, "
            f"{tree_bytes / best_baseline / 1e6:.1f} MB/s"
        )
        print(
            f"CCP backup (all archives, hashes, host state, manifest): {best_ccp:.2f} s, "
            f"{tree_bytes / best_ccp / 1e6:.1f} MB/s, backup {archive / 1e6:.0f} MB"
        )
        pigz = "with pigz" if shutil.which("pigz") else "WITHOUT pigz (install it: tests/testbed/install.sh)"
        print(
            f"RATIO backup throughput of {tree_bytes / 1e6:.0f} MB, CCP ({pigz}) / gzip baseline: {ratio:.2f} "
            f"({'meets' if ratio >= args.min_ratio else 'MISSES'} the target >= {args.min_ratio})"
        )
        return 0 if ratio >= args.min_ratio else 1
    finally:
        node.stop()
        shutil.rmtree(node.state_dir, ignore_errors=True)
        remove_workdir(workdir)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
