"""The swap a restore runs on the node: each entry renamed aside and the restored one renamed in; a
failure puts everything back. Run here with the local driver on a scratch directory."""

from __future__ import annotations

from pathlib import Path

from instances.commands import backup as scripts
from instances.drivers import LocalDriver


def tree(base: Path) -> dict[str, bytes]:
    return {
        p.relative_to(base).as_posix(): p.read_bytes()
        for p in sorted(base.rglob("*"))
        if p.is_file() and ".ccp-restore" not in p.parts[len(base.parts) :][0]
    }


def setup(tmp_path: Path) -> tuple[Path, Path]:
    install, staging = tmp_path / "tenant", tmp_path / "tenant" / ".ccp-restore-1"
    (install / "mkdocs").mkdir(parents=True)
    (install / "mkdocs/index.md").write_bytes(b"current\n")
    (install / "mkdocs/added.md").write_bytes(b"added since the backup\n")
    (install / ".env").write_bytes(b"A=current\n")
    (staging / "new/mkdocs").mkdir(parents=True)
    (staging / "new/mkdocs/index.md").write_bytes(b"backed up\n")
    return install, staging


def swap(install: Path, staging: Path, *names: str, script: str = scripts.SWAP):
    return LocalDriver().run(["sh", "-c", script, "test", str(install), str(staging), *names])


def test_swap_replaces_each_entry_and_undo_puts_the_old_ones_back(tmp_path):
    install, staging = setup(tmp_path)
    (staging / "new/.env").write_bytes(b"A=backed-up\n")
    (staging / "new/docker-compose.yml").write_bytes(b"services: {}\n")  # not on the node before
    before = tree(install)

    assert swap(install, staging, "mkdocs", ".env", "docker-compose.yml").exit_code == 0
    assert tree(install) == {
        "mkdocs/index.md": b"backed up\n",
        ".env": b"A=backed-up\n",
        "docker-compose.yml": b"services: {}\n",
    }

    assert swap(install, staging, "mkdocs", ".env", "docker-compose.yml", script=scripts.UNDO_SWAP).exit_code == 0
    assert tree(install) == before


def test_a_failed_rename_puts_everything_back(tmp_path):
    install, staging = setup(tmp_path)  # new/.env is missing: its rename fails after mkdocs was swapped
    before = tree(install)
    result = swap(install, staging, "mkdocs", ".env")
    assert result.exit_code == scripts.SWAP_PUT_BACK
    assert tree(install) == before


def test_odd_names_are_only_ever_arguments(tmp_path):
    install, staging = setup(tmp_path)
    (install / "-rf").write_bytes(b"old\n")
    (staging / "new/-rf").write_bytes(b"new\n")
    (install / "$(touch pwned)").write_bytes(b"old\n")
    (staging / "new/$(touch pwned)").write_bytes(b"new\n")
    assert swap(install, staging, "-rf", "$(touch pwned)").exit_code == 0
    assert (install / "-rf").read_bytes() == b"new\n" and (install / "$(touch pwned)").read_bytes() == b"new\n"
    assert not (install / "pwned").exists() and not (tmp_path / "pwned").exists()
