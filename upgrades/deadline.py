"""The runner's bound on a step: the driver a step sees refuses to go past the step's deadline.

Every call to the node made during a step is given at most the time the step has left, and a call
made after the deadline is refused; either way the step fails with `StepTimedOut`, a sentence naming
the step and its timeout, and the runner's failure and rollback path follows. A command cut short by
its timeout is ended on the node by the driver (its process group), so nothing the step started keeps
running there; a detached job is the exception its mode stops itself (see modes/full.py).
"""

import time

from ccp.errors import CCPError
from instances.drivers.errors import CommandTimeout


class StepTimedOut(CCPError):
    """A step ran past its timeout."""


class DeadlineDriver:
    """Wraps the node's driver for the steps of one upgrade; `bound()` sets the current step's deadline."""

    def __init__(self, driver):
        self.unbounded = driver  # for clean-up after a deadline passed, and work that outlives a step
        self.label = driver.label
        self._deadline: float | None = None
        self._message = ""

    def bound(self, *, label: str, timeout: float) -> None:
        self._deadline = time.monotonic() + timeout
        self._message = f'The step "{label}" did not finish within its timeout of {timeout:g} s and was stopped.'

    def unbind(self) -> None:
        self._deadline = None

    def check(self) -> None:
        """Raise StepTimedOut once the deadline has passed."""
        if self._deadline is not None and time.monotonic() >= self._deadline:
            raise StepTimedOut(self._message)

    def _left(self, timeout: float | None) -> float | None:
        self.check()
        if self._deadline is None:
            return timeout
        left = max(self._deadline - time.monotonic(), 0.001)
        return left if timeout is None else min(timeout, left)

    def run(self, argv, *, timeout: float | None = 60, **kwargs):
        try:
            return self.unbounded.run(argv, timeout=self._left(timeout), **kwargs)
        except CommandTimeout:
            self.check()  # cut short by the step's deadline, not by its own timeout
            raise

    def checksums(self, paths, base=None, *, timeout: float | None = 600):
        try:
            return self.unbounded.checksums(paths, base, timeout=self._left(timeout))
        except CommandTimeout:
            self.check()
            raise

    def __getattr__(self, name: str):
        # Every other driver call (files, streams, detached jobs) is refused once the deadline passed.
        attribute = getattr(self.unbounded, name)
        if not callable(attribute):
            return attribute

        def bounded(*args, **kwargs):
            self.check()
            return attribute(*args, **kwargs)

        return bounded
