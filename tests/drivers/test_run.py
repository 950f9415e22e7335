"""`run`: arguments arrive literally, exit codes and stderr come back, timeouts end the command."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path

import pytest

from instances.drivers import CommandFailed, CommandTimeout, Driver

from .helpers import processes_matching, wait_until_gone

pytestmark = pytest.mark.testbed

HOSTILE = [
    "two words",
    "it's",
    'say "hi"',
    "a; touch /tmp/ccp-pwned",
    "$(touch /tmp/ccp-pwned)",
    "`id`",
    "line\nbreak",
    "-n",
    "--help",
    "*",
    "$HOME",
    "back\\slash",
    "tab\there",
    "ünïcödé ✓",
    "",
]


def test_hostile_arguments_arrive_literally(driver: Driver) -> None:
    result = driver.run(["printf", "%s\\0", *HOSTILE], check=True)

    assert result.stdout.split(b"\0")[:-1] == [arg.encode() for arg in HOSTILE]
    assert not Path("/tmp/ccp-pwned").exists()


def test_exit_code_stdout_and_stderr_come_back_separately(driver: Driver) -> None:
    result = driver.run(["sh", "-c", "echo out; echo err >&2; exit 3"])

    assert (result.exit_code, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
    assert not result.ok


def test_check_raises_a_readable_command_failed(driver: Driver) -> None:
    with pytest.raises(CommandFailed) as caught:
        driver.run(["sh", "-c", "echo 'no such thing' >&2; exit 4", "my script"], check=True)

    error = caught.value
    assert (error.exit_code, error.stderr) == (4, b"no such thing\n")
    assert error.argv[0] == "sh"
    assert f"on node {driver.label} with exit code 4: no such thing" in error.message


def test_unknown_command_is_exit_127(driver: Driver) -> None:
    assert driver.run(["ccp-no-such-command-" + uuid.uuid4().hex[:6]]).exit_code == 127


def test_stdin_and_stdout_larger_than_the_ssh_window_do_not_deadlock(driver: Driver) -> None:
    # `cat` echoes while it reads: both directions are full at once, beyond any channel window.
    data = os.urandom(24 * 1024 * 1024)

    result = driver.run(["cat"], stdin=data, timeout=120, check=True)

    assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(data).digest()


def test_lots_of_stderr_does_not_block_stdout(driver: Driver) -> None:
    script = "head -c 8000000 /dev/zero >&2; echo done"

    result = driver.run(["sh", "-c", script], timeout=120, check=True)

    assert (len(result.stderr), result.stdout) == (8_000_000, b"done\n")


def test_cwd(driver: Driver, node_workdir: Path) -> None:
    spaced = node_workdir / "a dir"
    spaced.mkdir()

    assert driver.run(["pwd"], cwd=str(spaced), check=True).stdout == f"{spaced}\n".encode()
    assert driver.run(["pwd"], cwd=str(node_workdir / "missing")).exit_code != 0


def test_timeout_ends_the_command_and_its_children_on_the_node(driver: Driver) -> None:
    marker = f"1000.{uuid.uuid4().int % 10**8:08d}"  # a sleep only this test runs

    with pytest.raises(CommandTimeout) as caught:
        driver.run(["sh", "-c", f"sleep {marker}; echo finished"], timeout=1.5)

    assert "did not finish within 1.5 s" in caught.value.message
    assert wait_until_gone(marker) == []


def test_a_command_that_ignores_sigterm_is_killed(driver: Driver) -> None:
    marker = f"1000.{uuid.uuid4().int % 10**8:08d}"

    with pytest.raises(CommandTimeout):
        driver.run(["sh", "-c", f"trap '' TERM; sleep {marker}"], timeout=1)

    assert wait_until_gone(marker, within=15) == []


def test_no_timeout_means_no_limit(driver: Driver) -> None:
    assert driver.run(["sh", "-c", "sleep 0.2; echo ok"], timeout=None, check=True).stdout == b"ok\n"
    assert processes_matching("ccp-no-such-marker") == []


def test_on_output_sees_a_long_commands_output_as_it_arrives(driver: Driver) -> None:
    seen: list[tuple[float, bytes]] = []
    started = time.monotonic()
    script = "for i in 1 2 3; do echo out $i; echo err $i >&2; sleep 0.5; done"
    result = driver.run(
        ["sh", "-c", script], timeout=30, check=True, on_output=lambda chunk: seen.append((time.monotonic(), chunk))
    )
    ended = time.monotonic()

    # The first lines came while the command still ran; all of it is in the result too.
    assert seen and seen[0][0] - started < (ended - started) - 0.6
    everything = b"".join(chunk for _, chunk in seen)
    assert driver.run(["sleep", "2.5"], timeout=30, on_output=lambda chunk: seen.append((0, chunk))).ok
    assert seen[-2:] == [(0, b""), (0, b"")]  # a quiet command still calls back about once a second
    assert sorted(everything.splitlines()) == [b"err 1", b"err 2", b"err 3", b"out 1", b"out 2", b"out 3"]
    assert result.stdout == b"out 1\nout 2\nout 3\n" and result.stderr == b"err 1\nerr 2\nerr 3\n"
