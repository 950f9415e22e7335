"""One pooled SSH connection serves many operations at once (the worker's thread pool)."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .helpers import ssh_driver

pytestmark = pytest.mark.testbed


def test_thirty_threads_share_one_connection_without_exceeding_its_sessions(ssh_node, node_workdir: Path):
    """OpenSSH refuses an 11th session on a connection: commands wait for a slot instead of failing,
    and SFTP requests of different threads never mix their answers."""
    with ssh_driver(ssh_node) as driver:

        def work(n: int) -> tuple[bytes, bytes]:
            path = str(node_workdir / f"file-{n}")
            payload = f"thread {n}\n".encode() * (1000 + n)
            driver.write_file(path, payload)
            out = driver.run(["sh", "-c", 'sleep 0.3; cat -- "$1"', "sh", path], check=True).stdout
            assert driver.exists(path)
            return driver.read_file(path), out if out == payload else b"mismatch"

        with ThreadPoolExecutor(30) as pool:
            results = list(pool.map(work, range(30)))
    for n, (read, out) in enumerate(results):
        expected = f"thread {n}\n".encode() * (1000 + n)
        assert read == expected and out == expected
