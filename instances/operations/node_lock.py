"""The second fence: a lock on the node itself, for as long as an operation changes a tenant.

The database lock (locks.py) keeps two operations apart as long as the database tells the truth. This
one holds whatever the database says: an operation that changes a tenant (an upgrade, a restore) first
makes the directory `<install_dir>/.ccp/lock` with one atomic `mkdir` and writes into it who holds it
(operation, worker, time). A second operation that finds the directory refuses, naming the holder, so
two runners can never act on one tenant directory at once.

- The same operation may enter again: the task the reconciler hands a dead worker's upgrade to (resume,
  roll back) takes the lock over and says from whom.
- A lock left by a worker that died is broken only by the reconciler (`node_lock_break`, queued when it
  closes the operation), and only when the lock still names that operation; what it found is logged
  and returned as the task's result.
- Commands are argv lists run through the driver; nothing is assembled into a shell line.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass, field

from django.utils import timezone

from ccp.errors import CCPError, Conflict

from .choices import OperationKind
from .locks import owner_id

log = logging.getLogger(__name__)

LOCK_DIR = ".ccp/lock"
HOLDER = "holder"
TIMEOUT = 60
# The kinds that change a tenant, and so hold the node lock (a backup only reads it).
NODE_LOCKED_KINDS = (OperationKind.UPGRADE, OperationKind.RESTORE)


class NodeBusy(Conflict):
    """Another operation holds the tenant's lock on the node."""


def lock_path(install_dir: str) -> str:
    return posixpath.join(install_dir, LOCK_DIR)


def holder_of(kind: str, operation_id: int) -> str:
    return f"operation={kind} #{operation_id}\n"


def _describe(text: str) -> str:
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    if not fields:
        return "an unknown holder (its holder file is empty or missing)"
    return f"{fields.get('operation', '?')} (worker {fields.get('worker', '?')}, since {fields.get('since', '?')})"


@dataclass
class NodeLock:
    """`with NodeLock(...) as lock:` holds `<install_dir>/.ccp/lock` for the block. `lock.note` says
    whose lock it took over (a re-entry of the same operation), else is empty."""

    driver: object
    install_dir: str
    kind: str
    operation_id: int
    held: bool = False
    note: str = ""
    _text: str = field(default="", repr=False)

    @property
    def path(self) -> str:
        return lock_path(self.install_dir)

    def __enter__(self) -> NodeLock:
        if not self.held:
            self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        if not self.driver.exists(self.install_dir):
            return  # a first deploy: nothing there to fence yet, and the deploy must find the folder absent
        self.driver.run(["mkdir", "-p", "-m", "0700", "--", posixpath.dirname(self.path)], timeout=TIMEOUT, check=True)
        made = self.driver.run(["mkdir", "-m", "0700", "--", self.path], timeout=TIMEOUT)
        if not made.ok:
            found = self._read()
            if not found.startswith(holder_of(self.kind, self.operation_id)):
                raise NodeBusy(
                    f"The tenant in {self.install_dir} is busy on its node: {self.path} is held by "
                    f"{_describe(found)}. Nothing was changed. If that operation's worker is gone, the "
                    "reconciler removes the lock once it has closed the operation."
                )
            self.note = f"took over the node lock {self.path} from {_describe(found)}"
            log.warning("%s #%s %s", self.kind, self.operation_id, self.note)
        self._text = (
            f"{holder_of(self.kind, self.operation_id)}worker={owner_id()}\nsince={timezone.now():%Y-%m-%dT%H:%M:%SZ}\n"
        )
        self.driver.write_file(posixpath.join(self.path, HOLDER), self._text.encode(), mode=0o600)
        self.held = True

    def release(self) -> None:
        """Remove the lock if it is still this operation's (a failure to reach the node is logged: the
        reconciler breaks what is left)."""
        if not self.held:
            return
        self.held = False
        try:
            if self._read() == self._text or not self.driver.exists(self.path + "/" + HOLDER):
                self.driver.run(["rm", "-rf", "--", self.path], timeout=TIMEOUT, check=True)
        except CCPError as error:
            log.warning("Could not remove the node lock %s: %s", self.path, error.message)

    def _read(self) -> str:
        try:
            return self.driver.read_file(posixpath.join(self.path, HOLDER)).decode(errors="replace")
        except FileNotFoundError:
            return ""


def node_lock_break(*, driver, install_dir: str, kind: str, operation_id: int, reason: str) -> str:
    """The reconciler's part: remove the node lock a stopped worker left, if it still names that
    operation. Returns what it found and did (the evidence), one sentence."""
    lock = NodeLock(driver=driver, install_dir=install_dir, kind=kind, operation_id=operation_id)
    if not driver.exists(lock.path):
        return f"{lock.path}: no node lock left behind."
    found = lock._read()
    if not found.startswith(holder_of(kind, operation_id)):
        return f"{lock.path} is held by {_describe(found)}, not {kind} #{operation_id}: left alone."
    driver.run(["rm", "-rf", "--", lock.path], timeout=TIMEOUT, check=True)
    evidence = f"Broke the node lock {lock.path} of {kind} #{operation_id} ({reason}); it read: {found.strip()!r}."
    log.warning("%s", evidence)
    return evidence
