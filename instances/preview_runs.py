"""Previews of many instances at once, on a worker: in parallel across nodes, a few at a time per node.

A web request only creates the PreviewRun row (`preview_run_request`); the task runs
`preview_run_execute`, which records progress as each instance finishes and stores every report
already redacted, so the page that shows them never reaches a node.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ccp.errors import CCPError
from templates_engine import ChangeKind, FileStatus

from .choices import PreviewPurpose, PreviewRunStatus
from .models import Instance, PreviewRun
from .operations.enqueue import enqueue_on_commit
from .per_node import map_per_node
from .preview import release_or_default
from .redaction import redact, secret_values
from .selectors import CoverageNote, PreviewReport, ShownFileDiff, instance_preview_report

# Stored previews (diffs of every selected instance) are kept this long, then removed.
PREVIEW_RUN_KEEP = timedelta(days=1)


@dataclass(frozen=True)
class PreviewBlock:
    """One instance's preview for a page: the report, or why there is none (already redacted)."""

    instance: object
    report: PreviewReport | None = None
    error: str = ""


def preview_block(*, instance, release) -> PreviewBlock:
    """One instance, computed now (the single-instance page and the API do this for one instance)."""
    try:
        return PreviewBlock(instance, report=instance_preview_report(instance=instance, release=release))
    except CCPError as exc:
        return PreviewBlock(instance, error=redact(exc.message, secret_values(instance)))


# --- request and run -------------------------------------------------------------------------------


@transaction.atomic
def preview_run_request(
    *, instance_ids: list[int], release, purpose: str = PreviewPurpose.PREVIEW, user=None
) -> PreviewRun:
    """Create the row and queue the task (after commit). Does no node I/O. Runs older than
    PREVIEW_RUN_KEEP are removed: a preview is only worth approving while it is fresh."""
    PreviewRun.objects.filter(created_at__lt=timezone.now() - PREVIEW_RUN_KEEP).delete()
    run = PreviewRun.objects.create(
        purpose=purpose,
        release_version=release.version,
        instance_ids=sorted(set(instance_ids)),
        requested_by=user if user and user.is_authenticated else None,
    )
    enqueue_on_commit("instances.tasks.preview_run_task", run.pk)
    return run


def preview_run_execute(*, run_id: int) -> str:
    """Preview every instance of the run: nodes in parallel, at most CCP_PREVIEW_PER_NODE at a time
    on one node (each preview is one `tar` of its managed files over the node's shared connection)."""
    if not PreviewRun.objects.filter(pk=run_id, status=PreviewRunStatus.PENDING).update(
        status=PreviewRunStatus.RUNNING
    ):
        # Taken by another worker already, or removed (retention) before a worker got to it.
        return PreviewRun.objects.filter(pk=run_id).values_list("status", flat=True).first() or "removed"
    run = PreviewRun.objects.get(pk=run_id)
    try:
        release = release_or_default(run.release_version)
        instances = list(Instance.objects.select_related("node").filter(pk__in=run.instance_ids))
        results = _preview_all(run, instances, release)
    except CCPError as exc:
        PreviewRun.objects.filter(pk=run_id).update(
            status=PreviewRunStatus.FAILED, error=exc.message, finished_at=timezone.now()
        )
        return PreviewRunStatus.FAILED
    PreviewRun.objects.filter(pk=run_id).update(
        status=PreviewRunStatus.SUCCEEDED, results=results, finished_at=timezone.now()
    )
    return PreviewRunStatus.SUCCEEDED


def _preview_all(run: PreviewRun, instances: list, release) -> dict:
    def done(block: PreviewBlock) -> None:
        PreviewRun.objects.filter(pk=run.pk).update(done=F("done") + 1)

    blocks = preview_blocks_parallel(instances=instances, release=release, on_done=done)
    results = {str(instance_id): _result(block) for instance_id, block in blocks.items()}
    for missing in set(map(str, run.instance_ids)) - results.keys():
        results[missing] = {"error": "This instance no longer exists."}
    return results


def preview_blocks_parallel(*, instances: list, release, on_done=None) -> dict[int, PreviewBlock]:
    """Preview every instance: nodes in parallel, at most CCP_PREVIEW_PER_NODE at a time on one node.
    `on_done(block)` is called (in the calling thread) as each one finishes. Keyed by instance id."""
    return map_per_node(
        instances,
        lambda instance: preview_block(instance=instance, release=release),
        per_node=max(1, settings.CCP_PREVIEW_PER_NODE),
        on_done=(lambda instance, block: on_done(block)) if on_done else None,
        thread_name_prefix="ccp-preview",
    )


# --- stored reports ------------------------------------------------------------------------------


def _result(block: PreviewBlock) -> dict:
    if block.report is None:
        return {"error": block.error}
    report = block.report
    return {
        "report": {
            "template_set": report.template_set,
            "files": [
                {
                    "path": f.path,
                    "status": str(f.status),
                    "kind": str(f.kind),
                    "diff": f.diff,
                    "before": f.before,
                    "after": f.after,
                }
                for f in report.files
            ],
            "orphaned": list(report.orphaned),
            "notes": [asdict(note) for note in report.notes],
            "blocked": report.blocked,
            "blocked_reason": report.blocked_reason,
            "preview_hash": report.preview_hash,
            "kind": str(report.kind),
            "secrets_to_generate": list(report.secrets_to_generate),
        }
    }


def preview_run_blocks(run: PreviewRun) -> list[PreviewBlock]:
    """The stored previews as the page shows them, in slug order (empty until the run has finished)."""
    if run.status != PreviewRunStatus.SUCCEEDED:
        return []
    release = release_or_default(run.release_version)
    blocks = []
    for instance in Instance.objects.select_related("node").filter(pk__in=run.instance_ids).order_by("slug"):
        stored = run.results.get(str(instance.pk), {"error": "No preview was stored for this instance."})
        if "report" not in stored:
            blocks.append(PreviewBlock(instance, error=stored["error"]))
            continue
        data = stored["report"]
        blocks.append(
            PreviewBlock(
                instance,
                report=PreviewReport(
                    instance=instance,
                    release=release,
                    template_set=data["template_set"],
                    files=tuple(
                        ShownFileDiff(
                            path=f["path"],
                            status=FileStatus(f["status"]),
                            kind=ChangeKind(f["kind"]),
                            diff=f["diff"],
                            before=f["before"],
                            after=f["after"],
                        )
                        for f in data["files"]
                    ),
                    orphaned=tuple(data["orphaned"]),
                    coverage=None,
                    notes=tuple(CoverageNote(**note) for note in data["notes"]),
                    blocked=data["blocked"],
                    blocked_reason=data["blocked_reason"],
                    preview_hash=data["preview_hash"],
                    kind=ChangeKind(data["kind"]),
                    secrets_to_generate=tuple(data.get("secrets_to_generate", ())),
                ),
            )
        )
    return blocks
