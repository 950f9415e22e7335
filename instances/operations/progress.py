"""Progress: the one record every long operation writes, step by step, while it runs.

An operation (upgrade, deploy, backup, restore) opens a step (`step_open`), writes its output and the
bytes it moved into a `StepOutput` while it runs, and closes it with a status. The rows
(`OperationStep`) are what the admin pages, the API and the progress endpoint read, the same way for
every kind.

Output reaches the database while the step runs, throttled: at most once a second, or sooner when
64 KiB are waiting. Every secret value of the instance is redacted before anything is stored, also
when a secret arrives split over two writes: the end of what is waiting that could be the start of a
secret is held back until the next write shows it is not (or the step closes).

Kinds register how their rows read (`register_source`), so the endpoint knows a kind's model, its
view permission and how far it got, without this layer importing any of them.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db.models import F, Max, Value
from django.db.models.functions import Concat
from django.utils import timezone

from instances.redaction import redact

from .choices import StepStatus
from .models import OperationStep

# What a step keeps of its output (the tail); the endpoint serves up to this much.
OUTPUT_TAIL = 16_000
FLUSH_SECONDS = 1.0
FLUSH_CHARS = 64 * 1024


def _next_position(kind: str, operation_id: int) -> int:
    top = OperationStep.objects.filter(kind=kind, operation_id=operation_id).aggregate(top=Max("position"))["top"]
    return (top or 0) + 1


def step_open(
    *,
    kind: str,
    operation_id: int,
    name: str,
    key: str = "",
    is_rollback: bool = False,
    bytes_total: int | None = None,
    secrets: Iterable[str] = (),
) -> StepOutput:
    """Start a running step after the operation's last one; returns the writer of its output."""
    record = OperationStep.objects.create(
        kind=kind,
        operation_id=operation_id,
        position=_next_position(kind, operation_id),
        key=key or name,
        name=name,
        is_rollback=is_rollback,
        started_at=timezone.now(),
        bytes_total=bytes_total,
    )
    return StepOutput(record, secrets)


def step_record(
    *, kind: str, operation_id: int, name: str, status: str, output: str = "", key: str = ""
) -> OperationStep:
    """A step that is over as soon as it is written (skipped, or a note like "resolved attention")."""
    now = timezone.now()
    return OperationStep.objects.create(
        kind=kind,
        operation_id=operation_id,
        position=_next_position(kind, operation_id),
        key=key or name,
        name=name,
        status=status,
        started_at=now,
        finished_at=now,
        output=output[-OUTPUT_TAIL:],
        output_offset=len(output),
    )


@contextmanager
def step(
    *,
    kind: str,
    operation_id: int,
    name: str,
    key: str = "",
    bytes_total: int | None = None,
    secrets: Iterable[str] = (),
    describe: Callable[[BaseException], str] = str,
) -> Iterator[StepOutput]:
    """`with step(...) as out:` a step that succeeds when the block ends and fails (with the error's
    description as its last line) when it raises."""
    out = step_open(kind=kind, operation_id=operation_id, name=name, key=key, bytes_total=bytes_total, secrets=secrets)
    try:
        yield out
    except BaseException as error:
        out.close(StepStatus.FAILED, describe(error))
        raise
    out.close(StepStatus.SUCCEEDED)


class StepOutput:
    """The live output of one running step: redacted, its tail kept, written at most every second or
    64 KiB; and the bytes the step moved."""

    def __init__(self, record: OperationStep, secrets: Iterable[str] = ()):
        self.record = record
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._pending = ""
        self._dirty: set[str] = set()
        self._last_flush = 0.0  # the first write is stored at once: the page shows the step has output
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    @property
    def text(self) -> str:
        """What is stored so far (redacted)."""
        return self.record.output

    def write(self, text: str) -> None:
        """Add output; an empty write stores what waits once it is due (a quiet command's last lines)."""
        self._pending += text
        if self._pending or self._dirty:
            self._flush_if_due()

    def write_bytes(self, data: bytes) -> None:
        """`write` for a command's raw output: a character split between two chunks is decoded whole."""
        self.write(self._decoder.decode(data))

    def progress(self, done: int, total: int | None = None) -> None:
        """Bytes moved so far (and the total, when it is known)."""
        self.record.bytes_done = done
        self._dirty.add("bytes_done")
        if total is not None and total != self.record.bytes_total:
            self.record.bytes_total = total
            self._dirty.add("bytes_total")
        self._flush_if_due()

    def reset(self) -> None:
        """Start the output over (a resumed step that re-reads its whole log)."""
        self._pending = ""
        self.record.output, self.record.output_offset = "", 0
        self._dirty |= {"output", "output_offset"}
        self.flush()

    def flush(self, *, final: bool = False) -> None:
        self._move_pending(final=final)
        if self._dirty:
            self.record.save(update_fields=sorted(self._dirty))
            self._dirty.clear()
        self._last_flush = time.monotonic()

    def close(self, status: str, text: str = "") -> OperationStep:
        """End the step with `status`; `text` (a result or an error) is added as its last line."""
        if text:
            before = self.record.output + self._pending
            self._pending += ("\n" if before and not before.endswith("\n") else "") + text
        self._move_pending(final=True)
        self.record.status, self.record.finished_at = status, timezone.now()
        self._dirty |= {"status", "finished_at"}
        self.flush(final=True)
        return self.record

    def _flush_if_due(self) -> None:
        if time.monotonic() - self._last_flush >= FLUSH_SECONDS or len(self._pending) >= FLUSH_CHARS:
            self.flush()

    def _move_pending(self, *, final: bool) -> None:
        """Move what is waiting into the stored tail, redacted; keep back a possible start of a secret."""
        if not self._pending:
            return
        cut = len(self._pending) if final else len(self._pending) - _secret_prefix_at_end(self._pending, self.secrets)
        if cut <= 0:
            return
        chunk = redact(self._pending[:cut], self.secrets)
        self._pending = self._pending[cut:]
        self.record.output = (self.record.output + chunk)[-OUTPUT_TAIL:]
        self.record.output_offset += len(chunk)
        self._dirty |= {"output", "output_offset"}


class StepSequence:
    """Steps one after the other, for an operation written as a sequence (a restore): starting the next
    step ends the running one as succeeded; `end` closes the last one with the operation's outcome."""

    def __init__(self, *, kind: str, operation_id: int, secrets: Iterable[str] = ()):
        self.kind, self.operation_id, self.secrets = kind, operation_id, list(secrets)
        self.current: StepOutput | None = None

    def next(self, name: str, *, key: str = "", bytes_total: int | None = None) -> StepOutput:
        self.end(StepStatus.SUCCEEDED)
        self.current = step_open(
            kind=self.kind,
            operation_id=self.operation_id,
            name=name,
            key=key,
            bytes_total=bytes_total,
            secrets=self.secrets,
        )
        return self.current

    def end(self, status: str, text: str = "") -> None:
        if self.current is not None:
            self.current.close(status, text)
            self.current = None


def _secret_prefix_at_end(text: str, secrets: list[str]) -> int:
    """How many characters at the end of `text` could be the beginning of a secret."""
    longest = 0
    for secret in secrets:
        for n in range(min(len(secret) - 1, len(text)), longest, -1):
            if text.endswith(secret[:n]):
                longest = n
                break
    return longest


def steps_interrupted(*, kind: str, operation_id: int) -> int:
    """Close every step a dead worker left running: interrupted, ended now."""
    note = "\n[interrupted: the worker running this step stopped]"
    return OperationStep.objects.filter(kind=kind, operation_id=operation_id, status=StepStatus.RUNNING).update(
        status=StepStatus.INTERRUPTED,
        finished_at=timezone.now(),
        output=Concat("output", Value(note)),
        output_offset=F("output_offset") + len(note),
    )


# --- reading: what the endpoint and the pages show ------------------------------------------------


@dataclass(frozen=True)
class Source:
    """How the rows of one operation kind read: their model, the permission to view one, and how
    many steps a run of it has (None when unknown before it runs)."""

    model: type
    view_permission: str
    step_total: Callable[[object], int | None] = lambda row: None
    is_final: Callable[[object], bool] = lambda row: row.finished_at is not None


_SOURCES: dict[str, Source] = {}


def register_source(kind: str, source: Source) -> None:
    _SOURCES[str(kind)] = source


def source_of(kind: str) -> Source | None:
    return _SOURCES.get(kind)


def operation_steps(*, kind: str, operation_id: int):
    return OperationStep.objects.filter(kind=kind, operation_id=operation_id).order_by("position")


def operation_progress(*, kind: str, row, tail: int = 4000, since: int | None = None) -> dict:
    """The progress of one operation as the endpoint returns it: status, step N of M, elapsed time, and
    each step with the tail of its output. `since` (an `output_offset` a client saw before) makes the
    last step return only its output after that offset, when the tail still holds it."""
    source = _SOURCES[kind]
    steps = list(operation_steps(kind=kind, operation_id=row.pk))
    started, finished = row.started_at, row.finished_at
    elapsed = ((finished or timezone.now()) - started).total_seconds() if started else None
    forward = [s for s in steps if not s.is_rollback]
    current = next((s for s in reversed(steps) if s.status == StepStatus.RUNNING), steps[-1] if steps else None)
    items = []
    for index, record in enumerate(steps):
        output = record.output[-tail:] if tail else ""
        since_applied = False
        if since is not None and index == len(steps) - 1:
            start = record.output_offset - len(record.output)  # offset of the first stored character
            if start <= since <= record.output_offset:
                output, since_applied = record.output[since - start :], True
        items.append(
            {
                "position": record.position,
                "key": record.key,
                "label": record.name,
                "is_rollback": record.is_rollback,
                "status": record.status,
                "started_at": record.started_at,
                "finished_at": record.finished_at,
                "duration_seconds": record.duration_seconds,
                "elapsed_seconds": (timezone.now() - record.started_at).total_seconds()
                if record.finished_at is None
                else record.duration_seconds,
                "output": output,
                "output_offset": record.output_offset,
                "output_since": since if since_applied else None,
                "bytes_done": record.bytes_done,
                "bytes_total": record.bytes_total,
            }
        )
    return {
        "kind": kind,
        "id": row.pk,
        "status": row.status,
        "is_final": bool(source.is_final(row)),
        "started_at": started,
        "finished_at": finished,
        "elapsed_seconds": elapsed,
        "step_number": (forward.index(current) + 1) if current in forward else len(forward),
        "step_total": source.step_total(row),
        "current_step": current.key if current else None,
        "steps": items,
    }
