"""SSH connections kept open between the steps of an operation, closed after a while unused.

Keyed by (node id, host, port, user, client key fingerprint): every step of an upgrade, and every
upgrade a worker runs on that node soon after, shares one SSH connection instead of paying a handshake
each. A node's connections are dropped when its address, login, key or pinned host key changes: a
new key for the node (`get` with its `group`) closes the others of the group, and `drop_connections`
closes them all (saving a node, re-pinning, checking).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from .ssh import SSHDriver

PoolKey = tuple

# An idle connection costs the node a process; keep it for about one operation's pauses.
IDLE_SECONDS = float(os.environ.get("CCP_SSH_IDLE_SECONDS", "300"))


class ConnectionPool:
    def __init__(self, idle_seconds: float = IDLE_SECONDS):
        self.idle_seconds = idle_seconds
        self._drivers: dict[PoolKey, SSHDriver] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    def get(
        self,
        key: PoolKey,
        create: Callable[[], SSHDriver],
        reuse: Callable[[SSHDriver], bool] = lambda driver: True,
        group=None,
    ) -> SSHDriver:
        """The pooled driver for `key`, or a new one from `create()` (also when `reuse` says no).
        With `group` (a node id) as `key[0]`, a new driver replaces every other driver of the group."""
        with self._lock:
            driver = self._drivers.get(key)
            if driver is not None and reuse(driver):
                return driver
            stale = [driver] if driver is not None else []
            if group is not None:
                stale += [self._drivers.pop(k) for k in list(self._drivers) if k != key and k[0] == group]
            driver = create()
            self._drivers[key] = driver
            self._start_reaper()
        for old in stale:
            old.close()
        return driver

    def drop_group(self, group) -> int:
        """Close and forget every driver whose key starts with `group` (a node id)."""
        with self._lock:
            dropped = [self._drivers.pop(k) for k in list(self._drivers) if k[0] == group]
        for driver in dropped:
            driver.close()
        return len(dropped)

    def close_idle(self) -> int:
        """Close connections unused for `idle_seconds`; returns how many were closed."""
        with self._lock:
            drivers = list(self._drivers.values())
        closed = 0
        for driver in drivers:
            idle = driver.idle_for()
            if driver.connected and idle is not None and idle >= self.idle_seconds:
                driver.close()  # the driver stays pooled; its next use reconnects
                closed += 1
        return closed

    def close_all(self) -> None:
        with self._lock:
            drivers = list(self._drivers.values())
            self._drivers.clear()
        for driver in drivers:
            driver.close()

    def _start_reaper(self) -> None:
        if self._reaper is not None and self._reaper.is_alive():
            return
        self._stop.clear()
        self._reaper = threading.Thread(target=self._reap, name="ccp-ssh-pool-reaper", daemon=True)
        self._reaper.start()

    def _reap(self) -> None:
        interval = max(1.0, min(30.0, self.idle_seconds / 4))
        while not self._stop.wait(interval):
            self.close_idle()

    def stop(self) -> None:
        self._stop.set()

    def forget_after_fork(self) -> None:
        """In a forked child (Celery prefork): the parent's connections are not ours to use or close;
        sending a disconnect on a shared socket would cut the parent's session."""
        self._lock = threading.Lock()
        self._drivers = {}
        self._stop = threading.Event()
        self._reaper = None


pool = ConnectionPool()
os.register_at_fork(after_in_child=pool.forget_after_fork)


def drop_connections(node_id) -> int:
    """Close this process's pooled connections to a node (its address, login, key or pin changed)."""
    return pool.drop_group(node_id)


def close_all() -> None:
    """Close every pooled SSH connection (worker shutdown, tests)."""
    pool.close_all()
