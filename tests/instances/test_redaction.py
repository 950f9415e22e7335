"""The one redaction function and its one marker (pure: no database, no node)."""

from instances.redaction import REDACTED, redact
from templates_engine import REDACTED as ENGINE_MARKER


def test_one_marker_for_the_panel_and_the_template_engine():
    assert REDACTED == ENGINE_MARKER == "[redacted]"


def test_text_and_bytes_are_redacted_the_same_way_longest_secret_first():
    secrets = ["abc", "xxabcxx", ""]  # a secret inside another, and an empty value that must not count

    assert redact("say xxabcxx and abc", secrets) == "say [redacted] and [redacted]"
    assert redact(b"\x00xxabcxx\xffabc", secrets) == b"\x00[redacted]\xff[redacted]"


def test_order_of_the_secrets_given_does_not_matter():
    assert redact("token=s3cr3t-long", ["s3cr3t", "s3cr3t-long"]) == "token=[redacted]"
