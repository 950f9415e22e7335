"""Is the tenant's protected content (mkdocs/ by default) exactly what it was before the upgrade?

The common check costs the same whatever the content's size: one command on the node lists every
entry of the protected paths with its type, mode, owner, inode, size, mtime and ctime (both in ns),
sorts that listing, keeps it under `.ccp/upgrades/<id>/` and prints only its sha256 and a few
counts. Writing to a file changes its ctime, and only the kernel sets ctime, so a content change is
seen even when the writer put the old mtime back. With CCP_PROTECTED_FULL_HASH on, every file is
also hashed in full (sha256, the listing kept beside the other): before the upgrade in the
background, overlapped with the pull, and after it in series.

Three jobs in three places: `*_argv` build commands, `parse_*`/`changed_paths` read their output
(pure, unit-tested), and the step functions at the bottom run them through the driver.
"""

from __future__ import annotations

import posixpath
import threading
from dataclasses import asdict, dataclass

from django.conf import settings

from ..runner import Step, StepContext, StepError

STAT, CONTENT = "stat", "content"

# $1: install directory; $2: the listing file (relative to $1); $3: stat or content; $4…: the
# protected paths (missing ones are skipped). Prints `<sha256 of the listing> <entries> <files>
# <bytes>`. The listing is NUL-separated and sorted: `<path> <type> <mode> <uid> <gid> <inode>
# <size> <mtime> <ctime>` per entry (stat), or sha256sum -z lines (content). `find -H`: a protected
# path that is itself a symlink is followed, links inside it are listed as links. CCP's own .ccp/
# is left out, in case a tenant protects its whole directory.
SNAPSHOT = r"""
cd -- "$1" || exit 2
out=$2 kind=$3
shift 3
for p do
    shift
    if [ -e "$p" ] || [ -L "$p" ]; then set -- "$@" "$p"; fi
done
umask 077
mkdir -p -- "${out%/*}" || exit 2
if [ "$#" -eq 0 ]; then
    : >"$out.raw"
elif [ "$kind" = stat ]; then
    find -H "$@" -path ./.ccp -prune -o -printf '%p %y %m %U %G %i %s %T@ %C@\0' >"$out.raw" || exit 3
else
    find -H "$@" -path ./.ccp -prune -o -type f -exec sha256sum -z -- {} + >"$out.raw" || exit 3
fi
LC_ALL=C sort -z -o "$out" -- "$out.raw" || exit 3
rm -f -- "$out.raw"
digest=$(sha256sum <"$out") || exit 3
entries=$(tr -cd '\000' <"$out" | wc -c)
if [ "$#" -eq 0 ]; then
    sizes="0 0"
else
    sizes=$(find -H "$@" -path ./.ccp -prune -o -type f -printf '%s\n' |
            awk '{ n++; b += $1 } END { printf "%d %.0f\n", n, b }')
fi
printf '%s %s %s\n' "${digest%% *}" "$entries" "$sizes"
"""


@dataclass(frozen=True)
class Snapshot:
    """What is recorded on the upgrade row: a digest and counts, never the per-file list."""

    kind: str
    digest: str
    entries: int
    files: int
    bytes: int
    listing: str  # relative to the install directory, kept on the node

    def describe(self) -> str:
        return f"{self.files} protected files, {self.bytes} bytes"


def listing_path(upgrade_id: int, kind: str, moment: str) -> str:
    return f".ccp/upgrades/{upgrade_id}/protected-{moment}.{kind}"


def snapshot_argv(*, install_dir: str, paths: list[str], listing: str, kind: str) -> list[str]:
    if kind not in (STAT, CONTENT):
        raise ValueError(f"unknown snapshot kind {kind!r}")
    return ["sh", "-c", SNAPSHOT, "ccp-protected", install_dir, listing, kind, *paths]


def parse_snapshot(stdout: bytes, *, kind: str, listing: str) -> Snapshot:
    fields = stdout.decode(errors="replace").split()
    if len(fields) != 4 or len(fields[0]) != 64:
        raise StepError(f"Could not read the listing of the protected paths: {stdout[-300:]!r}")
    return Snapshot(kind, fields[0], int(fields[1]), int(fields[2]), int(fields[3]), listing)


def parse_listing(data: bytes, kind: str) -> dict[str, tuple[str, str]]:
    """path → (what is compared, entry type) for every entry of a listing.

    A directory is compared by type, mode, owner and inode only: its size, mtime and ctime change
    whenever an entry is added to or removed from it, and those entries are listed themselves."""
    entries = {}
    for record in data.split(b"\0"):
        if not record:
            continue
        text = record.decode("utf-8", errors="surrogateescape")
        if kind == STAT:  # the path may hold spaces; the eight fields after it never do
            path, *fields = text.rsplit(" ", 8)
            compared = fields[:5] if fields[0] == "d" else fields
            entries[path] = (" ".join(compared), fields[0])
        else:
            digest, _, path = text.partition("  ")
            entries[path] = (digest, "f")
    return entries


def changed_paths(before: bytes, after: bytes, kind: str) -> list[str]:
    """The entries that changed, appeared or went away. A directory that appeared holds no tenant
    content by itself (a first deploy creates the folders its compose file bind-mounts): only what
    is put in it counts, and that is listed on its own."""
    old, new = parse_listing(before, kind), parse_listing(after, kind)
    return sorted(
        p
        for p in old.keys() | new.keys()
        if old.get(p, (None,))[0] != new.get(p, (None,))[0] and not (p not in old and new[p][1] == "d")
    )


# --- running it ----------------------------------------------------------------------------------


def full_hash_enabled() -> bool:
    return bool(getattr(settings, "CCP_PROTECTED_FULL_HASH", False))


def take_snapshot(driver, instance, *, upgrade_id: int, kind: str, moment: str) -> Snapshot:
    """One round trip: list (or hash) the protected paths on the node, keep the listing there."""
    listing = listing_path(upgrade_id, kind, moment)
    argv = snapshot_argv(
        install_dir=instance.install_dir, paths=list(instance.protected_paths), listing=listing, kind=kind
    )
    timeout = 3600 if kind == CONTENT else 300
    result = driver.run(argv, timeout=timeout)
    if result.exit_code != 0:
        output = (result.stdout + result.stderr).decode(errors="replace").strip()
        raise StepError(f"Could not list the protected paths of {instance.install_dir}: {output[-400:]}")
    return parse_snapshot(result.stdout, kind=kind, listing=listing)


class _Background:
    """The full content hash running beside the next steps (a thread with its own SSH channel)."""

    def __init__(self, run):
        self.result: Snapshot | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(run,), name="ccp-protected-hash", daemon=True)
        self._thread.start()

    def _run(self, run) -> None:
        try:
            self.result = run()
        except BaseException as error:  # noqa: BLE001 - handed to the step that waits for it
            self.error = error

    def wait(self, timeout: float) -> Snapshot:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise StepError(f"Hashing the protected content took longer than {int(timeout)} s.")
        if self.error is not None:
            raise self.error
        return self.result


def snapshot_before(ctx: StepContext) -> str:
    """Step: record the protected paths' listing digest on the row (a resumed run compares with it);
    with the full-hash setting, start hashing the content in the background."""
    before = take_snapshot(ctx.driver, ctx.instance, upgrade_id=ctx.upgrade.pk, kind=STAT, moment="before")
    ctx.upgrade.state["protected_before"] = {STAT: asdict(before)}
    ctx.upgrade.save(update_fields=["state"])
    note = ""
    if full_hash_enabled():
        # Outlives this step (waited for by "protected content hashed"): not bound by this step's deadline.
        driver, instance, upgrade_id = ctx.driver.unbounded, ctx.instance, ctx.upgrade.pk
        ctx.state["content_hash"] = _Background(
            lambda: take_snapshot(driver, instance, upgrade_id=upgrade_id, kind=CONTENT, moment="before")
        )
        note = "; hashing their content in the background"
    return f"{before.describe()} listed (digest {before.digest[:12]}){note}"


def content_hash_steps() -> list[Step]:
    """With the full-hash setting: the step that waits for the content hash, placed just before the
    first step that may touch the tenant's files or containers. Without it: nothing."""
    if not full_hash_enabled():
        return []
    return [Step("protected_content_hashed", "protected content hashed", _content_before, timeout=3600)]


def _content_before(ctx: StepContext) -> str:
    background = ctx.state.get("content_hash")
    if background is None:  # resumed by another worker: hash now
        content = take_snapshot(ctx.driver, ctx.instance, upgrade_id=ctx.upgrade.pk, kind=CONTENT, moment="before")
    else:
        content = background.wait(ctx.timeout)
    ctx.upgrade.state.setdefault("protected_before", {})[CONTENT] = asdict(content)
    ctx.upgrade.save(update_fields=["state"])
    return f"{content.describe()} hashed (digest {content.digest[:12]})"


def verify_unchanged(ctx: StepContext) -> str:
    """Step: list again (and hash again, when the content was hashed before) and compare digests;
    on a difference, name the paths from the two listings kept on the node."""
    recorded = ctx.upgrade.state["protected_before"]
    if recorded and not ({STAT, CONTENT} & recorded.keys()):
        return _verify_legacy(ctx, recorded)
    checked = []
    for kind in (STAT, CONTENT):
        if kind not in recorded:
            continue
        before = Snapshot(**recorded[kind])
        after = take_snapshot(ctx.driver, ctx.instance, upgrade_id=ctx.upgrade.pk, kind=kind, moment="after")
        if after.digest != before.digest and (changed := _changes(ctx, before, after)):
            shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
            raise StepError(f"Protected content changed during the upgrade: {shown}.")
        checked.append(after)
    what = "listing and content" if len(checked) == 2 else "listing"
    return f"{checked[0].describe()} unchanged ({what} compared)"


def _verify_legacy(ctx: StepContext, before: dict[str, str]) -> str:
    """An upgrade started by an older CCP recorded every file's sha256 on its row (a full upgrade
    resumed across an update of the panel): compare the same way once more."""
    paths = [p for p in ctx.instance.protected_paths if ctx.driver.exists(posixpath.join(ctx.instance.install_dir, p))]
    after = (
        ctx.driver.checksums(
            [posixpath.join(ctx.instance.install_dir, p) for p in paths], base=ctx.instance.install_dir
        )
        if paths
        else {}
    )
    changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    if changed:
        shown = ", ".join(changed[:10]) + (f" and {len(changed) - 10} more" if len(changed) > 10 else "")
        raise StepError(f"Protected content changed during the upgrade: {shown}.")
    return f"{len(after)} protected files unchanged"


def _changes(ctx: StepContext, before: Snapshot, after: Snapshot) -> list[str]:
    """The changed paths, from the two listings kept on the node (read only when the digests differ)."""
    read, base = ctx.driver.read_file, ctx.instance.install_dir
    return changed_paths(
        read(posixpath.join(base, before.listing)), read(posixpath.join(base, after.listing)), before.kind
    )
