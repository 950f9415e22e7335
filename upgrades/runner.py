"""The one step runner behind every upgrade mode.

It records each step as it happens (key, label, status, start, end, redacted output tail), holds each
step to its timeout (upgrades.deadline: past it, the step fails with a sentence naming it and its
timeout, and the failure path below follows), keeps the instance lock alive, stops at safe points
when a cancel was asked for, and, when a step fails after the first change to the node, runs the
mode's rollback steps. Final status:

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
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from ccp.errors import CCPError
from instances.attention import attention_raise, attention_resolve_by
from instances.models import Backup
from instances.notifications.choices import NotificationEvent
from instances.notifications.services import notify
from instances.operations.choices import OperationKind
from instances.operations.db import DatabaseUnavailable, db_retry
from instances.operations.locks import Fence, LockLost
from instances.operations.models import OperationStep
from instances.operations.node_lock import NodeLock
from instances.operations.progress import StepOutput, step_open, step_record
from instances.redaction import redact

from .choices import StepStatus, UpgradeStatus
from .deadline import DeadlineDriver
from .models import Upgrade

log = logging.getLogger(__name__)


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
    """One step of a mode. `key` is stable (stored on the step's row; resume finds finished steps by
    it), `label` is what the operator reads and may be reworded freely."""

    key: str
    label: str
    run: Callable[["StepContext"], str | None]
    changes: bool = False  # once this step starts, a failure needs the rollback steps
    timeout: float = 300.0  # enforced by the runner; CCP_STEP_TIMEOUTS may set another per key

    @property
    def effective_timeout(self) -> float:
        return float(settings.CCP_STEP_TIMEOUTS.get(self.key, self.timeout))


@dataclass
class StepContext:
    """What a step sees: the upgrade, its instance and node, a driver, and state shared between steps."""

    upgrade: Upgrade
    driver: object
    secrets: list[str]
    state: dict = field(default_factory=dict)
    writer: StepOutput | None = None  # the running step's live output
    timeout: float = 300.0
    fence: Fence | None = None  # the claimed lock (None only when a test drives the runner by hand)
    node_lock: NodeLock | None = None  # the lock on the node, released before the outcome is recorded

    @property
    def step(self) -> OperationStep | None:
        """The running step's record."""
        return self.writer.record if self.writer else None

    def __post_init__(self):
        # Steps reach the node only through the runner's bound: no call outlives the step's timeout.
        if self.driver is not None and not isinstance(self.driver, DeadlineDriver):
            self.driver = DeadlineDriver(self.driver)

    @property
    def instance(self):
        return self.upgrade.instance

    @property
    def node(self):
        return self.upgrade.instance.node

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def output(self, text: str) -> None:
        """Append to the running step's output while it runs (redacted, tail kept; stored at most every
        second or 64 KiB: instances.operations.progress)."""
        if self.writer is not None:
            self._live(lambda: self.writer.write(text))

    def output_bytes(self, data: bytes) -> None:
        """`output` for a command's raw output as it arrives (Driver.run's on_output)."""
        if self.writer is not None:
            self._live(lambda: self.writer.write_bytes(data))

    def _live(self, fn: Callable[[], None]) -> None:
        # Live output only: the step's end stores it all, so a database outage need not hold the step up.
        try:
            self.write(fn, what="step output", seconds=0)
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


def finished_step_keys(upgrade: Upgrade) -> list[str]:
    """The keys of the steps a resumed upgrade skips: found by key, not label, so a label reworded
    since the upgrade began still finds its step."""
    return list(upgrade.steps.filter(status=StepStatus.SUCCEEDED, is_rollback=False).values_list("key", flat=True))


class StepRunner:
    def __init__(self, ctx: StepContext, *, on_step: Callable[[OperationStep], None] | None = None):
        self.ctx = ctx
        self.on_step = on_step

    def run(self, steps: list[Step], rollback: list[Step] | Callable[[StepContext], list[Step]]) -> str:
        """Run `steps`; on failure after a change run `rollback` (a list, or a function of the context
        called at that moment: what undoes a first deploy is known only once it ran). Returns the final
        status."""
        upgrade = self.ctx.upgrade
        changed = bool(self.ctx.state.get("changed"))
        if upgrade.state.get("step_total") != len(steps):  # "step N of M" on the progress endpoint
            upgrade.state["step_total"] = len(steps)
            self.ctx.write(lambda: upgrade.save(update_fields=["state"]), what="the upgrade's state")
        try:
            for step in steps:
                if step.key in self.ctx.state.get("done_steps", ()):
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
        writer = self.ctx.write(
            lambda: step_open(
                kind=OperationKind.UPGRADE,
                operation_id=self.ctx.upgrade.pk,
                key=step.key,
                name=step.label,
                is_rollback=is_rollback,
                secrets=self.ctx.secrets,
            ),
            what=f"the start of step {step.label!r}",
        )
        timeout = step.effective_timeout
        self.ctx.writer, self.ctx.timeout = writer, timeout
        self._notify(writer.record)
        try:
            result = self._bounded(step, timeout)
        except LockLost:
            raise
        except AlreadyDone as done:
            self._close(writer, StepStatus.SUCCEEDED, done.reason)
            raise
        except Exception as exc:
            self._close(writer, StepStatus.FAILED, _reason(exc, self.ctx))
            raise
        self._close(writer, StepStatus.SUCCEEDED, result or "")
        self.ctx.state.setdefault("done_steps", []).append(step.key)

    def _bounded(self, step: Step, timeout: float) -> str | None:
        """Run the step within its timeout: the driver refuses to go past it, and a step that returns
        late (its own work between node calls overran) fails all the same."""
        driver = self.ctx.driver
        if not isinstance(driver, DeadlineDriver):  # a recovery that could not reach the node
            return step.run(self.ctx)
        driver.bound(label=step.label, timeout=timeout)
        try:
            result = step.run(self.ctx)
            driver.check()
            return result
        finally:
            driver.unbind()

    def _close(self, writer: StepOutput, status: str, text: str) -> None:
        closed = False

        def close() -> OperationStep:
            nonlocal closed
            if closed:  # a retry after an outage: only what is not stored yet
                writer.flush(final=True)
                return writer.record
            closed = True
            return writer.close(status, text)

        self._notify(self.ctx.write(close, what=f"the end of step {writer.record.name!r}"))

    def _skip_rest(self, steps: list[Step], reason: str) -> None:
        self.ctx.write(lambda: self._record_skipped(steps, reason), what="the skipped steps")

    def _record_skipped(self, steps: list[Step], reason: str) -> None:
        done = {s.key for s in self.ctx.upgrade.steps.all()}
        for step in steps:
            if step.key not in done:
                self._notify(self._record(step.key, step.label, StepStatus.SKIPPED, reason))

    def _record(self, key: str, label: str, status: str, output: str) -> OperationStep:
        return step_record(
            kind=OperationKind.UPGRADE,
            operation_id=self.ctx.upgrade.pk,
            key=key,
            name=label,
            status=status,
            output=self.ctx.redact(output),
        )

    def _finish(self, status: str, error: str, attention: str = "") -> str:
        if self.ctx.node_lock is not None:
            self.ctx.node_lock.release()  # the node is free before the instance is (the next one finds it so)
        return self.ctx.write(
            lambda: self._record_finish(status, error, attention), what="the final status", release=True
        )

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
            self._notify_outcome(status, error)
        return status

    def _notify_outcome(self, status: str, error: str) -> None:
        """Failed and rolled-back upgrades are notified, once per upgrade (a recovery that finishes the
        same upgrade again does not notify twice)."""
        event = {
            UpgradeStatus.FAILED: NotificationEvent.UPGRADE_FAILED,
            UpgradeStatus.ROLLED_BACK: NotificationEvent.UPGRADE_ROLLED_BACK,
            UpgradeStatus.ROLLED_BACK_INTERRUPTED: NotificationEvent.UPGRADE_ROLLED_BACK,
        }.get(status)
        if event is None:
            return
        upgrade = self.ctx.upgrade
        notify(
            event,
            title=f"{upgrade.kind_display} #{upgrade.pk} of {upgrade.instance} {UpgradeStatus(status).label.lower()}",
            body=f"{upgrade.kind_display} #{upgrade.pk} of {upgrade.instance} (node {upgrade.instance.node}): "
            f"{self.ctx.redact(error) or UpgradeStatus(status).label}",
            url=reverse("admin:upgrades_upgrade_change", args=[upgrade.pk]),
            instance=upgrade.instance,
            dedupe_key=f"upgrade-{upgrade.pk}",
        )

    def _resolve_attention(self) -> None:
        """A successful upgrade vouches for the instance again: open attention records are resolved."""
        upgrade = self.ctx.upgrade
        resolved = attention_resolve_by(
            instance=upgrade.instance, operation=f"{upgrade.kind_display} #{upgrade.pk} succeeded"
        )
        if resolved:
            record = self._record(
                "resolve_attention",
                "resolve attention",
                StepStatus.SUCCEEDED,
                f"this upgrade succeeded, so it resolved {resolved} open attention record(s) of {upgrade.instance}",
            )
            self._notify(record)

    def _notify(self, record: OperationStep) -> None:
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
