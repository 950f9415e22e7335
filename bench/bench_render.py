"""Benchmark: render the campaign set and preview it against files on local disk, for many instances.

Setup (not timed): render every instance once and write the result to a temp directory as the "node"
files; then change some of them: every 10th instance gets another HTTP port in .env (values-only),
every 25th an extra service in its compose file (structural), every 40th loses nginx.conf (missing).
Half the instances are registered (no .env render).

Timed, per instance: build nothing new, render, read the managed files from disk, diff. Prints the
per-instance times and the total; exits 1 when the total exceeds --budget seconds.

    .venv/bin/python bench/bench_render.py [--instances 200] [--budget 2.0] [--verbose]
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from templates_engine import ChangeKind, example_context, load_template_set, preview_render, render, write_rendered  # noqa: E402


def _contexts(template_set, count: int) -> list[dict]:
    contexts = []
    for index in range(count):
        context = example_context(
            template_set,
            slug=f"tenant-{index:03d}",
            port_base=20000 + index * 10,
            registry="registry.example.org",
            image_tag="v2.10.3",
        )
        context["instance"]["is_registered"] = index % 2 == 1
        context["instance"]["profiles"] = [["newsletter", "monitoring"], ["monitoring"], []][index % 3]
        contexts.append(context)
    return contexts


def _prepare_node_files(template_set, contexts: list[dict], base: Path) -> None:
    for index, context in enumerate(contexts):
        directory = base / context["instance"]["slug"]
        files = render(template_set, context, include_env=not context["instance"]["is_registered"])
        write_rendered(files, directory)
        if index % 10 == 0 and (directory / ".env").exists():
            env = directory / ".env"
            env.write_text(env.read_text().replace("HTTP_PORT=", "HTTP_PORT=1"))
        if index % 25 == 0:
            with (directory / "docker-compose.yml").open("a") as compose:
                compose.write("  legacy-cron:\n    image: busybox:1.36\n")
        if index % 40 == 0:
            (directory / "nginx" / "nginx.conf").unlink()


def _preview_one(template_set, context: dict, directory: Path):
    files = render(template_set, context, include_env=not context["instance"]["is_registered"])
    actual = {}
    for path in files:
        target = directory / path
        actual[path] = target.read_bytes() if target.is_file() else None
    return preview_render(template_set, files, actual)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--budget", type=float, default=2.0, help="seconds allowed for all instances")
    parser.add_argument("--verbose", action="store_true", help="one line per instance")
    args = parser.parse_args()

    template_set = load_template_set(REPO / "deploy_templates", "campaign")
    contexts = _contexts(template_set, args.instances)
    with tempfile.TemporaryDirectory(prefix="ccp-bench-") as tmp:
        base = Path(tmp)
        _prepare_node_files(template_set, contexts, base)

        timings, kinds = [], {kind: 0 for kind in ChangeKind}
        started = time.perf_counter()
        for context in contexts:
            one = time.perf_counter()
            preview = _preview_one(template_set, context, base / context["instance"]["slug"])
            timings.append((time.perf_counter() - one) * 1000)
            kinds[preview.kind] += 1
        total = time.perf_counter() - started

    if args.verbose:
        for context, ms in zip(contexts, timings, strict=True):
            print(f"{context['instance']['slug']}: {ms:.2f} ms")
    else:
        print("per-instance ms:", " ".join(f"{ms:.2f}" for ms in timings))
    print(
        f"instances={len(timings)}  per-instance ms: min {min(timings):.2f}  median {statistics.median(timings):.2f}  "
        f"p95 {sorted(timings)[int(len(timings) * 0.95) - 1]:.2f}  max {max(timings):.2f}  "
        f"mean {statistics.fmean(timings):.2f}"
    )
    print("previews: " + ", ".join(f"{kind.value} {count}" for kind, count in kinds.items()))
    print(f"total {total:.3f} s for render + read + diff of {len(timings)} instances (budget {args.budget:.1f} s)")
    return 0 if total <= args.budget else 1


if __name__ == "__main__":
    sys.exit(main())
