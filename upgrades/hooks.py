"""Named points inside an upgrade where the test suite can act on the node (e.g. change a protected file
mid-upgrade). Empty in production: nothing registers hooks outside tests."""

HOOKS: dict[str, list] = {}


def register(name: str, hook) -> None:
    HOOKS.setdefault(name, []).append(hook)


def clear() -> None:
    HOOKS.clear()
