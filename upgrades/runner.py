"""The one step runner behind every upgrade mode.

It records each step as it happens (name, status, start, end, redacted output tail), keeps the
instance lock alive, stops at safe points when a cancel was asked for, and, when a step fails after
the first change to the node, runs the mode's rollback steps. Final status:

- succeeded    every step passed;
- rolled_back  a step failed (or the upgrade was cancelled) and the rollback restored a healthy tenant;
- cancelled    cancelled before anything on the node changed;
- failed       a step failed before any change, or the rollback failed too (the instance is then
               marked as needing attention, with the reason).

A success resolves the instance's open attention records. `run_rollback` is the recovery of an upgrade
whose worker died (upgrades.services.upgrade_recover): only the rollback, ending "rolled back
(interrupted)".
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from ccp.errors import CCPError
from instances.attention import attention_raise, attention_resolve_by
from instances.models import Backup
from instances.operations.db import DatabaseUnavailable, db_retry
from instances.operations.locks import Fence, LockLost
from instances.operations.node_lock import NodeLock
from instances.redaction import redact as _redact

from .choices import StepStatus, UpgradeStatus
from .models import Upgrade, UpgradeStep

log = logging.getLogger(__name__)

OUTPUT_TAIL = 16_000


class StepError(CCPError):
    """A step failed; the message says why in the operator's words."""


class UpgradeCancelled(CCPError):
    pass


class AlreadyDone(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a step that found the tenant already where the upgrade would take it: nothing to do."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Step:
    name: str
    run: Callable[["StepContext"], str | None]
    changes: bool = False  # once this step starts, a failure needs the rollback steps
    timeout: float = 300.0


@dataclass
class StepContext:
    """What a step sees: the upgrade, its instance and node, a driver, and state shared between steps."""

    upgrade: Upgrade
    driver: object
    secrets: list[str]
    state: dict = field(default_factory=dict)
    step: UpgradeStep | None = None
    timeout: float = 300.0
    fence: Fence | None = None  # the claimed lock (None only when a test drives the runner by hand)
    node_lock: NodeLock | None = None  # the lock on the node, released before the outcome is recorded
    _last_flush: float = 0.0

    @property
    def instance(self):
        return self.upgrade.instance

    @property
    def node(self):
        return self.upgrade.instance.node

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def output(self, text: str, *, flush_every: float = 1.0) -> None:
        """Append to the current step's output (redacted, tail kept), saved at most every `flush_every` s."""
        if not text or self.step is None:
            return
        self.step.output = (self.step.output + self.redact(text))[-OUTPUT_TAIL:]
        now = time.monotonic()
        if now - self._last_flush >= flush_every:
            self._last_flush = now
            step = self.step
            try:  # live output only: the step's end saves it all, so a database outage need not hold the step up
                self.write(lambda: step.save(update_fields=["output"]), what="step output", seconds=0)
            except DatabaseUnavailable:
                pass

    def write(self, fn: Callable[[], object], *, what: str, seconds: float | None = None, release: bool = False):
        """Write this upgrade's own records: only while it holds its lock (the fence), retried across a
        short database outage (`seconds`, default CCP_DB_RETRY_SECONDS). Raises LockLost once the lock
        was taken over. `release`: the lock goes with this write (the final status)."""
        if self.fence is not None:
            return self.fence.write(fn, what=what, seconds=seconds, release=release)
        return db_retry(fn, what=what, seconds=seconds)

    def check_cancel(self) -> None:
        """A safe point: stop if the lock was lost (LockLost) or an operator asked to cancel."""
        if self.fence is not None:
            self.fence.check()
        cancel = db_retry(
            lambda: Upgrade.objects.filter(pk=self.upgrade.pk, cancel_requested=True).exists(),
            what="whether a cancel was asked for",
        )
        if cancel:
            raise UpgradeCancelled("Cancelled by an operator.")


def redact(text: str, secrets: list[str]) -> str:
    # Longest first, so a secret that contains another is hidden whole.
    return _redact(text, sorted(secrets, key=len, reverse=True))


class StepRunner:
    def __init__(self, ctx: StepContext, *, on_step: Callable[[UpgradeStep], None] | None = None):
        self.ctx = ctx
        self.on_step = on_step
        self.position = ctx.upgrade.steps.count()

    def run(self, steps: list[Step], rollback: list[Step] | Callable[[StepContext], list[Step]]) -> str:
        """Run `steps`; on failure after a change run `rollback` (a list, or a function of the context
        called at that moment: what undoes a first deploy is known only once it ran). Returns the final
        status."""
        upgrade = self.ctx.upgrade
        changed = bool(self.ctx.state.get("changed"))
        try:
            for step in steps:
                if step.name in self.ctx.state.get("done_steps", ()):
                    continue  # resumed: this step finished before the worker restarted
                self.ctx.check_cancel()
                changed = changed or step.changes
                self.ctx.state["changed"] = changed
                if changed and not upgrade.state.get("changed"):
                    # Stored, so the reconciler knows a killed worker left the node to roll back.
                    upgrade.state["changed"] = True
                    self.ctx.write(lambda: upgrade.save(update_fields=["state"]), what="the upgrade's state")
                self._run_step(step, is_rollback=False)
                # A step may find out that it changed the node (a first deploy creating its directory).
                changed = bool(self.ctx.state.get("changed"))
        except AlreadyDone as done:
            self._skip_rest(steps, done.reason)
            return self._finish(UpgradeStatus.SUCCEEDED, "")
        except LockLost:
            raise  # the lock is someone else's now: no rollback, no record of ours
        except Exception as exc:  # any failure: record it, then restore the tenant
            reason = _reason(exc, self.ctx)
            cancelled = isinstance(exc, UpgradeCancelled)
            if not changed:
                return self._finish(UpgradeStatus.CANCELLED if cancelled else UpgradeStatus.FAILED, reason)
            if callable(rollback):
                rollback = rollback(self.ctx)
            if not rollback:
                return self._finish(
                    UpgradeStatus.FAILED,
                    reason,
                    attention=(
                        f"Upgrade #{upgrade.pk} failed after changing the node and this mode has no automatic "
                        f"rollback: {reason}{_backup_hint(upgrade)}"
                    ),
                )
            status = UpgradeStatus.CANCELLED if cancelled else UpgradeStatus.ROLLED_BACK
            return self.run_rollback(rollback, reason=reason, status=status, what_happened="failed")
        return self._finish(UpgradeStatus.SUCCEEDED, "")

    def run_rollback(
        self, rollback: list[Step], *, reason: str, status: str, what_happened: str = "was interrupted"
    ) -> str:
        """The rollback (after a failed step, or as the recovery after the worker that ran the upgrade
        died): `status` when it restores a healthy tenant, failed (and attention) when it does not."""
        try:
            for step in rollback:
                if self.ctx.fence is not None:
                    self.ctx.fence.check()
                self._run_step(step, is_rollback=True)
        except LockLost:
            raise
        except Exception as rollback_exc:
            rollback_reason = _reason(rollback_exc, self.ctx)
            return self._finish(
                UpgradeStatus.FAILED,
                f"{reason} Rollback failed too: {rollback_reason}",
                attention=f"Upgrade #{self.ctx.upgrade.pk} {what_happened} and its rollback failed: {rollback_reason}",
            )
        return self._finish(status, reason)

    def _run_step(self, step: Step, *, is_rollback: bool) -> None:
        self.position += 1
        record = self.ctx.write(
            lambda: UpgradeStep.objects.create(
                upgrade=self.ctx.upgrade,
                position=self.position,
                name=step.name,
                is_rollback=is_rollback,
                started_at=timezone.now(),
            ),
            what=f"the start of step {step.name!r}",
        )
        self.ctx.step, self.ctx.timeout = record, step.timeout
        self._notify(record)
        try:
            result = step.run(self.ctx)
        except LockLost:
            raise
        except AlreadyDone as done:
            self._close(record, StepStatus.SUCCEEDED, done.reason)
            raise
        except Exception as exc:
            self._close(record, StepStatus.FAILED, _reason(exc, self.ctx))
            raise
        self._close(record, StepStatus.SUCCEEDED, result or "")
        self.ctx.state.setdefault("done_steps", []).append(step.name)

    def _close(self, record: UpgradeStep, status: str, text: str) -> None:
        if text:
            record.output = (record.output + ("\n" if record.output else "") + self.ctx.redact(text))[-OUTPUT_TAIL:]
        record.status, record.finished_at = status, timezone.now()
        self.ctx.write(
            lambda: record.save(update_fields=["output", "status", "finished_at"]),
            what=f"the end of step {record.name!r}",
        )
        self._notify(record)

    def _skip_rest(self, steps: list[Step], reason: str) -> None:
        position = self.position

        def record() -> None:
            self.position = position  # a retried attempt numbers its rows again
            self._record_skipped(steps, reason)

        self.ctx.write(record, what="the skipped steps")

    def _record_skipped(self, steps: list[Step], reason: str) -> None:
        done = {s.name for s in self.ctx.upgrade.steps.all()}
        now = timezone.now()
        for step in steps:
            if step.name not in done:
                self.position += 1
                record = UpgradeStep.objects.create(
                    upgrade=self.ctx.upgrade,
                    position=self.position,
                    name=step.name,
                    status=StepStatus.SKIPPED,
                    started_at=now,
                    finished_at=now,
                    output=reason,
                )
                self._notify(record)

    def _finish(self, status: str, error: str, attention: str = "") -> str:
        position = self.position

        def record() -> str:
            self.position = position  # a retried attempt numbers its rows again
            return self._record_finish(status, error, attention)

        if self.ctx.node_lock is not None:
            self.ctx.node_lock.release()  # the node is free before the instance is (the next one finds it so)
        return self.ctx.write(record, what="the final status", release=True)

    def _record_finish(self, status: str, error: str, attention: str) -> str:
        upgrade = self.ctx.upgrade
        # One transaction: whoever sees the final status also sees the attention it raised or resolved.
        with transaction.atomic():
            upgrade.status, upgrade.error, upgrade.finished_at = status, error, timezone.now()
            upgrade.save(update_fields=["status", "error", "finished_at"])
            if attention:
                attention_raise(
                    instance=upgrade.instance,
                    reason=self.ctx.redact(attention),
                    operation_kind="upgrade",
                    operation_id=upgrade.pk,
                )
            elif status == UpgradeStatus.SUCCEEDED:
                self._resolve_attention()
        return status

    def _resolve_attention(self) -> None:
        """A successful upgrade vouches for the instance again: open attention records are resolved."""
        upgrade = self.ctx.upgrade
        resolved = attention_resolve_by(
            instance=upgrade.instance, operation=f"{upgrade.kind_display} #{upgrade.pk} succeeded"
        )
        if resolved:
            self.position += 1
            now = timezone.now()
            record = UpgradeStep.objects.create(
                upgrade=upgrade,
                position=self.position,
                name="resolve attention",
                status=StepStatus.SUCCEEDED,
                started_at=now,
                finished_at=now,
                output=f"this upgrade succeeded, so it resolved {resolved} open attention record(s) of "
                f"{upgrade.instance}",
            )
            self._notify(record)

    def _notify(self, record: UpgradeStep) -> None:
        if self.on_step:
            self.on_step(record)


def _backup_hint(upgrade: Upgrade) -> str:
    """Where to restore from: the pre-upgrade backup the mode took, when there is one."""
    backup_id = upgrade.state.get("backup_id")
    backup = Backup.objects.filter(pk=backup_id).first() if backup_id else None
    if backup is None:
        return ""
    return (
        f" Restore from the pre-upgrade backup #{backup.pk} ({backup.location}), taken before anything "
        f"changed: Backups › #{backup.pk} › Restore, or POST /api/v1/backups/{backup.pk}/restore/."
    )


def _reason(exc: BaseException, ctx: StepContext) -> str:
    if isinstance(exc, CCPError):
        return ctx.redact(exc.message)
    log.exception("Unexpected error in upgrade %s", ctx.upgrade.pk)
    return ctx.redact(f"Unexpected error: {exc.__class__.__name__}: {exc}")
