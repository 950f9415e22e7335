"""SSH connections kept open between the steps of an operation, closed after a while unused.

Keyed by (host, port, user, client key fingerprint): every step of an upgrade, and every upgrade a
worker runs on that node soon after, shares one SSH connection instead of paying a handshake each.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from .ssh import SSHDriver

PoolKey = tuple[str, int, str, str]

# An idle connection costs the node a process; keep it for about one operation's pauses.
IDLE_SECONDS = float(os.environ.get("CCP_SSH_IDLE_SECONDS", "300"))


class ConnectionPool:
    def __init__(self, idle_seconds: float = IDLE_SECONDS):
        self.idle_seconds = idle_seconds
        self._drivers: dict[PoolKey, SSHDriver] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    def get(self, key: PoolKey, create: Callable[[], SSHDriver],
            reuse: Callable[[SSHDriver], bool] = lambda driver: True) -> SSHDriver:
        """The pooled driver for `key`, or a new one from `create()` (also when `reuse` says no)."""
        with self._lock:
            driver = self._drivers.get(key)
            if driver is not None and reuse(driver):
                return driver
            stale, driver = driver, create()
            self._drivers[key] = driver
            self._start_reaper()
        if stale is not None:
            stale.close()
        return driver

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


def close_all() -> None:
    """Close every pooled SSH connection (worker shutdown, tests)."""
    pool.close_all()
