"""Run every benchmark of bench/ in one go and print their ratios together at the end.

Sizes follow each benchmark's defaults (the issues' numbers) unless these variables say otherwise:
BENCH_CONTENT_SIZES (bench_upgrade, MB:FILES,…), BENCH_BACKUP_MB (bench_backup, bench_backup_s3),
BENCH_FLEET_INSTANCES, BENCH_PREVIEW_INSTANCES. Needs the testbed (`make testbed`, root) and, for the fleet pages, the
DATABASE_URL of a PostgreSQL server (a throw-away database is made next to it).

    .venv/bin/python bench/run_all.py [NAME …]      # e.g. bench_fleet bench_backup; default: all
"""

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = [
    "bench_ssh",
    "bench_render",
    "bench_upgrade",
    "bench_fleet_ops",
    "bench_rollout",
    "bench_fleet",
    "bench_backup",
    "bench_backup_s3",
]


def main() -> int:
    chosen = sys.argv[1:] or BENCHES
    summary, failed = [], []
    for name in chosen:
        print(f"=== {name}", flush=True)
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, str(HERE / f"{name}.py")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        lines = []
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line.rstrip())
        code = proc.wait()
        ratios = [line[len("RATIO ") :] for line in lines if line.startswith("RATIO ")] or lines[-2:]
        summary.append((name, code, time.monotonic() - started, ratios))
        if code:
            failed.append(name)
    print("\n=== summary")
    for name, code, seconds, ratios in summary:
        print(f"{name} ({'ok' if code == 0 else f'exit {code}'}, {seconds:.0f} s)")
        for ratio in ratios:
            print(f"    {ratio}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
