"""The upgrade modes (DESIGN.md §7), as a registry.

A mode is one module of this package that declares `MODE = register_mode(Mode(...))`: its choice
(upgrades.choices.UpgradeMode), its steps, its rollback, what it needs from the request, and what
the reconciler does when its worker dies. The other modules here are the steps modes share. Adding a
mode is that one module and its choice; `mode_for` finds every mode module of the package itself.
"""

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from ccp.errors import CCPError


@dataclass(frozen=True)
class Mode:
    choice: str  # an UpgradeMode value
    steps: Callable  # (StepContext) -> list[Step]
    rollback: Callable  # (StepContext) -> list[Step]; [] when the mode has no automatic rollback
    # (upgrade, *, release, image_tag, preview_hash) -> None: fills the target of a new Upgrade row
    # from the request, or raises CCPError saying what is missing.
    request: Callable
    # When its worker dies after changing the node: re-attach to a job still running on the node, or
    # roll back from the copies kept there (.ccp/upgrades/<id>/); neither: the upgrade is interrupted.
    resumes_detached_job: bool = False
    recovers_from_kept_copies: bool = False


_MODES: dict[str, Mode] = {}
_discovered = False


def register_mode(mode: Mode) -> Mode:
    if mode.choice in _MODES and _MODES[mode.choice] is not mode:
        raise ValueError(f"Two upgrade modes declare the choice {mode.choice!r}.")
    _MODES[mode.choice] = mode
    return mode


def _discover() -> None:
    """Import every module of this package once: each mode module registers itself on import."""
    global _discovered
    if not _discovered:
        for module in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{module.name}")
        _discovered = True


def mode_for(choice: str) -> Mode:
    _discover()
    try:
        return _MODES[choice]
    except KeyError:
        raise CCPError(f"Unknown upgrade mode {choice!r}.") from None


def all_modes() -> dict[str, Mode]:
    _discover()
    return dict(_MODES)


def require(value, message: str) -> None:
    if not value:
        raise CCPError(message)
