"""Benchmark: a CCP backup of a 500 MB tenant tree into an S3-compatible bucket against the same backup
into the local folder, in the same run, and the peak memory of the worker that takes it.

Target (issue 14): the bucket at >= 0.8x the throughput of the local folder, and the worker's peak
resident memory under 150 MB whatever the archive size (the upload streams 8 MiB parts; nothing is
staged in memory or on disk).

Setup (not timed): an sshd node on 127.0.0.x (tests/testbed, root and the `ccpnode` account), the
mixed ~500 MB mkdocs tree of bench_backup.py, a throw-away SQLite database, a `moto_server` on a free
loopback port (pip moto[server], in requirements-dev.txt) with a bucket.

Timed, best of --runs each, alternating: `backup_run` of the instance (what a worker's backup task
does) in a fresh worker process, once with CCP_BACKUP_STORAGE a local folder, once s3://bucket/prefix.
The worker process reports the time of backup_run alone; its peak RSS is read from wait4().

    .venv/bin/python bench/bench_backup_s3.py [--size-mb 500] [--runs 2] [--min-ratio 0.8] [--max-rss-mb 150]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_backup import give_to, make_instance, setup_django, write_mkdocs_tree  # noqa: E402

from tests.testbed.s3 import CREDENTIALS, moto_server  # noqa: E402
from tests.testbed.sshd import make_workdir, remove_workdir, start_node  # noqa: E402


def child(backup_id: int) -> None:
    """The worker: take one requested backup, print how long backup_run took."""
    import django

    django.setup()
    from instances.backups.services import backup_run
    from instances.backups.storage import backup_storage

    backup_storage()  # a worker makes its S3 client once, not per backup
    started = time.perf_counter()
    status = backup_run(backup_id=backup_id)
    print(json.dumps({"status": status, "seconds": time.perf_counter() - started}))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_worker(instance, storage: str) -> tuple[float, float, int, float]:
    """(seconds of backup_run, peak RSS in MB of the worker process, stored bytes, its CPU seconds)."""
    from django.conf import settings

    from instances.backups.services import backup_request
    from instances.backups.storage import backup_storage
    from instances.models import Backup
    from instances.operations.models import InstanceLock

    backup = backup_request(instance=instance, enqueue=False)
    env = {**os.environ, "CCP_BACKUP_STORAGE": storage}
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", str(backup.pk)], env=env, stdout=subprocess.PIPE, text=True
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"the worker process failed ({status}): {output}")
    result = json.loads(output.strip().splitlines()[-1])
    backup = Backup.objects.get(pk=backup.pk)
    if result["status"] != "succeeded":
        raise SystemExit(f"the backup into {storage} failed: {backup.error}")
    settings.CCP_BACKUP_STORAGE = storage
    backup_storage().remove(backup.location)
    Backup.objects.filter(pk=backup.pk).delete()
    InstanceLock.objects.filter(instance=instance).delete()
    return result["seconds"], usage.ru_maxrss / 1024, backup.size_bytes, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=int(os.environ.get("BENCH_BACKUP_MB", "500")))
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--min-ratio", type=float, default=0.8)
    parser.add_argument("--max-rss-mb", type=float, default=150)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return 0

    node = start_node()
    workdir = make_workdir(prefix="bench-s3")
    scratch = Path(tempfile.mkdtemp(prefix="ccp-bench-backup-s3-"))
    try:
        with moto_server() as s3:
            bucket = s3.new_bucket()
            os.environ.update({**CREDENTIALS, "CCP_S3_ENDPOINT_URL": s3.endpoint, "CCP_S3_REGION": "us-east-1"})
            print(f"node: sshd on {node.host}:{node.port}; tenant in {workdir}; bucket {bucket} at {s3.endpoint}")
            files, tree_bytes = write_mkdocs_tree(workdir, args.size_mb * 1024 * 1024)
            give_to(workdir, node.user)
            print(f"mkdocs tree: {files} files, {tree_bytes / 1e6:.0f} MB (text, JSON, images, PDFs)")
            subprocess.run(["tar", "-C", str(workdir), "-cf", "/dev/null", "mkdocs"], check=True)  # warm the cache
            setup_django(scratch)
            instance = make_instance(node, workdir)
            local_dir = str(scratch / "backups")
            targets = {"local": local_dir, "s3": f"s3://{bucket}/bench"}

            times: dict[str, list[float]] = {"local": [], "s3": []}
            rss: dict[str, list[float]] = {"local": [], "s3": []}
            stored = 0
            for run in range(1, args.runs + 1):
                cpu = {}
                for name in ("local", "s3"):
                    moto_before = cpu_seconds(s3.process.pid)
                    seconds, peak, stored, cpu[name] = run_worker(instance, targets[name])
                    cpu[f"{name} moto"] = cpu_seconds(s3.process.pid) - moto_before
                    times[name].append(seconds)
                    rss[name].append(peak)
                print(
                    f"run {run}: local {times['local'][-1]:.2f} s ({rss['local'][-1]:.0f} MB peak, worker CPU "
                    f"{cpu['local']:.1f} s), s3 {times['s3'][-1]:.2f} s ({rss['s3'][-1]:.0f} MB peak, worker CPU "
                    f"{cpu['s3']:.1f} s, moto_server CPU {cpu['s3 moto']:.1f} s); load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
            local, remote = min(times["local"]), min(times["s3"])
            ratio = local / remote  # = S3 throughput / local throughput
            peak = max(rss["s3"] + rss["local"])
            print(f"local folder: {local:.2f} s, {tree_bytes / local / 1e6:.1f} MB/s, backup {stored / 1e6:.0f} MB")
            print(f"S3 (moto_server): {remote:.2f} s, {tree_bytes / remote / 1e6:.1f} MB/s")
            print(
                f"RATIO backup throughput of {tree_bytes / 1e6:.0f} MB, S3 / local folder: {ratio:.2f} "
                f"({'meets' if ratio >= args.min_ratio else 'MISSES'} the target >= {args.min_ratio})"
            )
            print(
                f"RATIO worker peak memory: {peak:.0f} MB (local {max(rss['local']):.0f}, s3 {max(rss['s3']):.0f}) "
                f"({'meets' if peak < args.max_rss_mb else 'MISSES'} the target < {args.max_rss_mb:.0f} MB)"
            )
            return 0 if ratio >= args.min_ratio and peak < args.max_rss_mb else 1
    finally:
        node.stop()
        shutil.rmtree(node.state_dir, ignore_errors=True)
        remove_workdir(workdir)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
