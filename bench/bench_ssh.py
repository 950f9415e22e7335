"""SSHDriver against OpenSSH's own tools, on a real sshd of the testbed (run as root).

    .venv/bin/python bench/bench_ssh.py [--commands 200] [--megabytes 200]

1. Latency: `true` run N times over one reused SSHDriver connection vs one `ssh` process per
   command (what a shell-script deployment does). Target: reuse >= 20x faster per command.
2. Throughput: a file to the node with SSHDriver.write_file (SFTP) and open_stream_in (exec
   channel) vs `scp`. Target: write_file >= 0.5x scp. Also from the node: open_stream_out vs scp.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from instances.drivers import SSHDriver  # noqa: E402
from tests.testbed.sshd import SSHNode, make_workdir, remove_workdir, start_node  # noqa: E402

LATENCY_TARGET = 20.0
THROUGHPUT_TARGET = 0.5
RUNS = 3


def openssh_options(node: SSHNode) -> list[str]:
    return [
        "-i", node.key_path,
        "-o", "BatchMode=yes",
        "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null",
        "-o", "LogLevel=ERROR",
    ]  # fmt: skip


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bench_latency(node: SSHNode, driver: SSHDriver, count: int) -> tuple[float, float]:
    driver.run(["true"], check=True)  # connect first: the point is the reused connection
    reused = [timed(lambda: driver.run(["true"], check=True)) for _ in range(count)]
    ssh = ["ssh", *openssh_options(node), "-p", str(node.port), f"{node.user}@{node.host}", "true"]
    spawned = [timed(lambda: subprocess.run(ssh, check=True)) for _ in range(count)]
    return statistics.median(reused), statistics.median(spawned)


def throughput(size: int, seconds: list[float]) -> float:
    return size / statistics.median(seconds) / 2**20


def bench_throughput(node: SSHNode, driver: SSHDriver, size: int, workdir: Path) -> dict[str, float]:
    data = os.urandom(size)
    target = str(workdir / "payload.bin")
    with tempfile.NamedTemporaryFile(prefix="ccp-bench-") as source:
        source.write(data)
        source.flush()
        scp = [
            "scp",
            "-q",
            *openssh_options(node),
            "-P",
            str(node.port),
            source.name,
            f"{node.user}@{node.host}:{workdir / 'scp.bin'}",
        ]
        results = {"scp": throughput(size, [timed(lambda: subprocess.run(scp, check=True)) for _ in range(RUNS)])}

    def stream_in() -> None:
        with driver.open_stream_in(["sh", "-c", 'cat >"$1"', "-", target]) as stream:
            view = memoryview(data)
            for start in range(0, size, 1024 * 1024):
                stream.write(view[start : start + 1024 * 1024])

    def stream_out() -> None:
        with driver.open_stream_out(["cat", "--", target]) as stream:
            for _ in stream:
                pass

    results["write_file"] = throughput(size, [timed(lambda: driver.write_file(target, data)) for _ in range(RUNS)])
    results["stream_in"] = throughput(size, [timed(stream_in) for _ in range(RUNS)])
    assert (workdir / "payload.bin").stat().st_size == size
    results["stream_out"] = throughput(size, [timed(stream_out) for _ in range(RUNS)])
    with tempfile.TemporaryDirectory(prefix="ccp-bench-") as local:
        scp_back = [
            "scp",
            "-q",
            *openssh_options(node),
            "-P",
            str(node.port),
            f"{node.user}@{node.host}:{target}",
            f"{local}/back.bin",
        ]
        results["scp_back"] = throughput(
            size, [timed(lambda: subprocess.run(scp_back, check=True)) for _ in range(RUNS)]
        )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--megabytes", type=int, default=200)
    args = parser.parse_args()

    node = start_node()
    workdir = make_workdir("bench")
    driver = SSHDriver(node.host, node.port, node.user, pkey_text=node.client_key)
    try:
        reused, spawned = bench_latency(node, driver, args.commands)
        speedup = spawned / reused
        print(
            f"{args.commands} x `true`: SSHDriver reused connection median {reused * 1000:.2f} ms, "
            f"one ssh process each median {spawned * 1000:.2f} ms -> {speedup:.1f}x "
            f"(target >= {LATENCY_TARGET:g}x)"
        )
        rates = bench_throughput(node, driver, args.megabytes * 2**20, workdir)
        ratio = rates["write_file"] / rates["scp"]
        print(
            f"{args.megabytes} MB to the node (median of {RUNS}): write_file {rates['write_file']:.0f} MB/s, "
            f"open_stream_in {rates['stream_in']:.0f} MB/s, scp {rates['scp']:.0f} MB/s -> write_file/scp "
            f"{ratio:.2f}x (target >= {THROUGHPUT_TARGET:g}x)"
        )
        print(
            f"{args.megabytes} MB from the node (median of {RUNS}): open_stream_out {rates['stream_out']:.0f} MB/s, "
            f"scp {rates['scp_back']:.0f} MB/s -> {rates['stream_out'] / rates['scp_back']:.2f}x"
        )
        transport = driver.connect()
        print(
            f"negotiated: {transport.remote_cipher}, {transport.remote_mac}; "
            f"python {sys.version.split()[0]}, {os.cpu_count()} cores"
        )
        return 0 if speedup >= LATENCY_TARGET and ratio >= THROUGHPUT_TARGET else 1
    finally:
        driver.close()
        node.stop()
        remove_workdir(workdir)
        remove_workdir(node.state_dir)


if __name__ == "__main__":
    sys.exit(main())
