"""Coloured status badges: every state an operator scans for has one colour meaning, on every page."""

from django.utils.html import format_html

# state value → colour class (ok, bad, warn, busy, neutral). One table for upgrades, backups, restores,
# health, nodes' checks and attention: "failed" is red wherever it appears.
BADGE_KIND = {
    "succeeded": "ok",
    "healthy": "ok",
    "ok": "ok",
    "active": "ok",
    "failed": "bad",
    "unhealthy": "bad",
    "attention": "bad",
    "interrupted": "bad",
    "rolled_back": "warn",
    "rolled_back_interrupted": "warn",
    "cancelled": "neutral",
    "maintenance": "warn",
    "running": "busy",
    "pending": "busy",
    "unknown": "neutral",
    "disabled": "neutral",
    "skipped": "neutral",
}


def badge(value: str, label: str | None = None):
    """<span class="ccp-badge ccp-badge-KIND" data-state="value">label</span> (label: the value, spaced)."""
    kind = BADGE_KIND.get(value, "neutral")
    return format_html(
        '<span class="ccp-badge ccp-badge-{}" data-state="{}">{}</span>',
        kind,
        value,
        label if label is not None else value.replace("_", " "),
    )


def first_sentence(error: str, limit: int = 240) -> str:
    """The operator's sentence of an error: its first line (command output, when there is any, follows it)."""
    line = (error or "").strip().split("\n", 1)[0].strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"
