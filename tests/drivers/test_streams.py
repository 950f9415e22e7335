"""Streams: 200 MB each way with flat memory; failures reported when the block ends."""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from pathlib import Path

import pytest

from instances.drivers import CommandFailed, Driver

from .helpers import wait_until_gone

pytestmark = pytest.mark.testbed

SIZE = 200 * 1024 * 1024
MEMORY_BUDGET = 50 * 1024 * 1024


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB$", Path("/proc/self/status").read_text(), re.MULTILINE)
    assert match, f"{field} missing from /proc/self/status"
    return int(match.group(1))


class PeakMemory:
    """Growth of this process's peak RSS over a block. Writing 5 to clear_refs resets the kernel's
    high-water mark (VmHWM) to the current RSS, so the peak is exact, not sampled."""

    def __enter__(self) -> PeakMemory:
        Path("/proc/self/clear_refs").write_text("5")
        self.start = _status_kib("VmRSS") * 1024
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.growth = _status_kib("VmHWM") * 1024 - self.start


def test_the_memory_meter_sees_a_buffered_copy() -> None:
    # What the budget assertions below would catch: holding the stream in memory.
    with PeakMemory() as meter:
        blob = b"x" * (80 * 1024 * 1024)
        del blob

    assert meter.growth >= 75 * 1024 * 1024


def test_200_mb_out_of_the_node(driver: Driver, node_workdir: Path) -> None:
    source = str(node_workdir / "big.bin")
    driver.run(["sh", "-c", 'head -c "$1" /dev/urandom >"$2"', "-", str(SIZE), source], timeout=120, check=True)
    expected = driver.run(["sha256sum", source], timeout=120, check=True).stdout.split()[0].decode()
    digest, received, chunk_sizes = hashlib.sha256(), 0, set()

    with PeakMemory() as meter, driver.open_stream_out(["cat", "--", source]) as stream:
        for chunk in stream:
            digest.update(chunk)
            received += len(chunk)
            chunk_sizes.add(len(chunk))

    assert (received, digest.hexdigest()) == (SIZE, expected)
    assert chunk_sizes == {stream.chunk_size}  # fixed-size chunks (SIZE is a multiple)
    assert meter.growth < MEMORY_BUDGET, f"peak RSS grew {meter.growth / 2**20:.0f} MiB"


def test_200_mb_into_the_node(driver: Driver) -> None:
    block = os.urandom(1024 * 1024)
    digest = hashlib.sha256()

    with PeakMemory() as meter, driver.open_stream_in(["sha256sum"]) as stream:
        for n in range(SIZE // len(block)):
            chunk = n.to_bytes(8, "big") + block[8:]  # every MiB differs
            digest.update(chunk)
            stream.write(chunk)

    assert stream.exit_code == 0
    assert stream.stdout.split()[0].decode() == digest.hexdigest()
    assert stream.bytes_written == SIZE
    assert meter.growth < MEMORY_BUDGET, f"peak RSS grew {meter.growth / 2**20:.0f} MiB"


def test_a_failing_producer_raises_when_the_block_ends(driver: Driver) -> None:
    with pytest.raises(CommandFailed) as caught:
        with driver.open_stream_out(["sh", "-c", "echo partial; echo 'tar: broken' >&2; exit 2"]) as stream:
            assert stream.read() == b"partial\n"

    assert (caught.value.exit_code, caught.value.stderr) == (2, b"tar: broken\n")


def test_a_consumer_failing_after_reading_everything(driver: Driver) -> None:
    with pytest.raises(CommandFailed) as caught:
        with driver.open_stream_in(["sh", "-c", "cat >/dev/null; echo 'load: bad archive' >&2; exit 3"]) as stream:
            stream.write(b"not an archive")

    assert caught.value.exit_code == 3
    assert b"load: bad archive" in caught.value.stderr


def test_a_consumer_that_quits_early_fails_the_write(driver: Driver) -> None:
    with pytest.raises(CommandFailed) as caught:
        with driver.open_stream_in(["sh", "-c", "echo 'gave up' >&2; exit 5"]) as stream:
            for _ in range(256):  # far more than any pipe or window holds
                stream.write(b"\0" * (1024 * 1024))

    assert caught.value.exit_code == 5
    assert b"gave up" in caught.value.stderr


def test_stopping_early_ends_the_producer_without_error(driver: Driver) -> None:
    marker = f"ccp-marker-{uuid.uuid4().hex[:8]}"

    with driver.open_stream_out(["sh", "-c", "cat /dev/zero; :", marker]) as stream:
        assert len(stream.read(1000)) > 0

    assert wait_until_gone(marker) == []


def test_a_missing_program_fails_like_through_a_shell(driver: Driver) -> None:
    with pytest.raises(CommandFailed) as caught:
        with driver.open_stream_out(["ccp-no-such-program"]) as stream:
            stream.read()

    assert caught.value.exit_code == 127
