"""Detached jobs: they outlive the connection that started them; polls stream their log."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from instances.drivers import Driver, DriverError, JobStatus, SSHDriver
from tests.testbed.sshd import SSHNode

from .helpers import ssh_driver

pytestmark = pytest.mark.testbed

TEN_SECOND_JOB = ["sh", "-c", 'for i in 1 2 3 4 5 6 7 8 9 10; do echo "step $i"; sleep 1; done; echo "all done" >&2']
TEN_SECOND_LOG = b"".join(f"step {i}\n".encode() for i in range(1, 11)) + b"all done\n"


def poll_to_the_end(driver: Driver, job_dir: str, job_id: str, offset: int = 0, within: float = 60) -> JobStatus:
    """Poll like the upgrade runner does; returns the last status with all output joined."""
    output = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        status = driver.poll_detached(job_dir, job_id, offset)
        output += status.output
        offset = status.offset
        if not status.running:
            return JobStatus(running=False, exit_code=status.exit_code, output=output, offset=offset)
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} still running after {within} s")


def test_a_job_runs_detached_and_reports_its_exit_code(driver: Driver, node_workdir: Path) -> None:
    jobs = str(node_workdir / ".ccp" / "jobs")

    job_id = driver.start_detached(["sh", "-c", "echo working; echo oops >&2; exit 7"], jobs, cwd=str(node_workdir))
    status = poll_to_the_end(driver, jobs, job_id)

    assert (status.running, status.exit_code, status.output) == (False, 7, b"working\noops\n")
    assert (node_workdir / ".ccp" / "jobs" / job_id / "rc").read_text() == "7\n"


def job_pid(job: Path) -> int:
    deadline = time.monotonic() + 10
    while not (job / "pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return int((job / "pid").read_text())


def test_the_job_runs_in_a_session_of_its_own(driver: Driver, node_workdir: Path) -> None:
    # Its own session: no signal aimed at the starter's process group or terminal reaches it.
    jobs = node_workdir / "jobs"
    job_id = driver.start_detached(["sleep", "5"], str(jobs))
    pid = job_pid(jobs / job_id)

    session = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[3])

    assert session == pid
    assert driver.poll_detached(str(jobs), job_id).running


def test_polling_from_an_offset_returns_only_new_output(driver: Driver, node_workdir: Path) -> None:
    jobs = str(node_workdir / "jobs")
    job_id = driver.start_detached(["sh", "-c", "echo one; sleep 1.5; echo two"], jobs)
    time.sleep(0.7)

    first = driver.poll_detached(jobs, job_id)
    rest = poll_to_the_end(driver, jobs, job_id, first.offset)

    assert (first.running, first.output) == (True, b"one\n")
    assert (rest.exit_code, rest.output) == (0, b"two\n")


def test_an_unknown_job_is_a_readable_error(driver: Driver, node_workdir: Path) -> None:
    with pytest.raises(DriverError) as caught:
        driver.poll_detached(str(node_workdir), "20260101T000000Z-deadbeef")

    assert "no detached job 20260101T000000Z-deadbeef" in caught.value.message


def test_a_killed_job_is_reported_lost(driver: Driver, node_workdir: Path) -> None:
    jobs = node_workdir / "jobs"
    job_id = driver.start_detached(["sleep", "30"], str(jobs))

    os.killpg(job_pid(jobs / job_id), signal.SIGKILL)  # as a reboot or the OOM killer would
    status = poll_to_the_end(driver, str(jobs), job_id, within=10)

    assert (status.running, status.exit_code) == (False, None)


def test_a_job_survives_its_ssh_connection_dropping(ssh_node: SSHNode, node_workdir: Path) -> None:
    jobs = str(node_workdir / ".ccp" / "jobs")
    starter = ssh_driver(ssh_node)
    job_id = starter.start_detached(TEN_SECOND_JOB, jobs)
    time.sleep(1.5)

    starter.connect().close()  # the connection dies under the driver, as when a worker is killed
    time.sleep(1)
    with ssh_driver(ssh_node) as poller:
        status_after_drop = poller.poll_detached(jobs, job_id)
        final = poll_to_the_end(poller, jobs, job_id, status_after_drop.offset)

    assert status_after_drop.running
    assert final.exit_code == 0
    assert status_after_drop.output + final.output == TEN_SECOND_LOG


def test_the_dropped_driver_reconnects_on_its_next_use(ssh_node: SSHNode) -> None:
    driver: SSHDriver = ssh_driver(ssh_node)
    first = driver.connect()
    first.close()

    assert driver.run(["true"]).ok
    assert driver.connect() is not first
    driver.close()


def test_stopping_a_job_ends_it_and_everything_it_started(driver: Driver, node_workdir: Path) -> None:
    jobs = node_workdir / "jobs"
    job_id = driver.start_detached(["sh", "-c", "sleep 60 & sleep 60; echo never"], str(jobs))
    pid = job_pid(jobs / job_id)

    said = driver.stop_detached(str(jobs), job_id)

    assert said == "stopped the job's processes on the node"
    status = driver.poll_detached(str(jobs), job_id)
    assert (status.running, status.exit_code) == (False, 143)
    assert [stat for stat in Path("/proc").glob("[0-9]*/stat") if _pgid(stat) == pid] == []
    assert driver.stop_detached(str(jobs), job_id) == "the job had already ended (exit code 143)"


def _pgid(stat: Path) -> int | None:
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[2]) if fields[0] != "Z" else None
