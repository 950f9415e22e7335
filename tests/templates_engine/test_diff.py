"""Previews: per-file status, values-only vs structural, redaction and the approval hash."""

import pytest
import yaml

from templates_engine import ChangeKind, FileStatus, diff_files, preview_render, render, side_by_side_html

from .helpers import context_for

pytestmark = []


@pytest.fixture
def rendered(campaign):
    return render(campaign, context_for(campaign), include_env=True)


def _on_node(files) -> dict[str, bytes | None]:
    return {path: f.content for path, f in files.items()}


def _by_path(preview):
    return {f.path: f for f in preview.files}


def test_an_unchanged_node_has_no_changes(campaign, rendered):
    preview = preview_render(campaign, rendered, _on_node(rendered))
    assert not preview.has_changes
    assert preview.kind == ChangeKind.NONE
    assert {f.status for f in preview.files} == {FileStatus.UNCHANGED}
    assert all(f.unified_diff == "" for f in preview.files)
    assert preview.orphaned == ()
    assert preview.summary().startswith("No changes")


def test_a_changed_port_is_values_only(campaign, rendered):
    node = _on_node(rendered)
    node["docker-compose.yml"] = node["docker-compose.yml"].replace(b"${HTTP_PORT}:80", b"${HTTP_PORT}:8080")
    node[".env"] = node[".env"].replace(b"HTTP_PORT=18000", b"HTTP_PORT=18999")
    preview = preview_render(campaign, rendered, node)
    files = _by_path(preview)
    assert files["docker-compose.yml"].status == FileStatus.CHANGED
    assert files["docker-compose.yml"].kind == ChangeKind.VALUES_ONLY
    assert files[".env"].kind == ChangeKind.VALUES_ONLY
    assert preview.kind == ChangeKind.VALUES_ONLY
    assert '-      - "${HTTP_BIND:-0.0.0.0}:${HTTP_PORT}:8080"' in files["docker-compose.yml"].unified_diff
    assert '+      - "${HTTP_BIND:-0.0.0.0}:${HTTP_PORT}:80"' in files["docker-compose.yml"].unified_diff
    assert files["docker-compose.yml"].unified_diff.startswith("--- a/docker-compose.yml\n+++ b/docker-compose.yml\n")


def test_an_added_service_is_structural(campaign, rendered):
    node = _on_node(rendered)
    compose = yaml.safe_load(node["docker-compose.yml"])
    del compose["services"]["newsletter"]  # the node runs an older release without it
    node["docker-compose.yml"] = yaml.safe_dump(compose).encode()
    preview = preview_render(campaign, rendered, node)
    assert _by_path(preview)["docker-compose.yml"].kind == ChangeKind.STRUCTURAL
    assert preview.kind == ChangeKind.STRUCTURAL


def test_an_added_key_is_structural_but_a_reordered_file_is_values_only():
    before = b"services:\n  a:\n    image: x\n    environment:\n      - A=1\n"
    reordered = b"services:\n  a:\n    environment:\n      - A=2\n    image: y\n"
    added_key = b"services:\n  a:\n    image: x\n    environment:\n      - A=1\n      - B=1\n"
    for after, kind in ((reordered, ChangeKind.VALUES_ONLY), (added_key, ChangeKind.STRUCTURAL)):
        preview = diff_files({"c.yml": after}, {"c.yml": before}, ["c.yml"])
        assert preview.files[0].kind == kind


def test_env_variables_added_are_structural():
    preview = diff_files({".env": b"A=1\nB=2\n"}, {".env": b"A=1\n"}, [".env"])
    assert preview.files[0].kind == ChangeKind.STRUCTURAL


def test_unparseable_yaml_on_the_node_is_structural():
    preview = diff_files({"c.yml": b"a: 1\n"}, {"c.yml": b"a: [\n"}, ["c.yml"])
    assert preview.files[0].kind == ChangeKind.STRUCTURAL


def test_other_files_are_values_only():
    preview = diff_files(
        {"nginx/nginx.conf": b"worker_processes 2;\n"},
        {"nginx/nginx.conf": b"worker_processes 1;\n"},
        ["nginx/nginx.conf"],
    )
    assert preview.files[0].kind == ChangeKind.VALUES_ONLY


def test_new_missing_and_orphaned_files():
    rendered = {"compose.yml": b"a: 1\n", "configs/new.yml": b"b: 1\n", "nginx.conf": b"x\n"}
    actual = {"compose.yml": b"a: 1\n", "configs/new.yml": None, "nginx.conf": None}
    preview = diff_files(rendered, actual, managed=["compose.yml", "nginx.conf", "configs/old.yml"])
    files = _by_path(preview)
    assert files["configs/new.yml"].status == FileStatus.NEW  # this release adds it
    assert files["nginx.conf"].status == FileStatus.MISSING  # managed, but gone from the node
    assert files["nginx.conf"].unified_diff.startswith("--- a/nginx.conf\n+++ b/nginx.conf\n")
    assert preview.orphaned == ("configs/old.yml",)  # left in place, never deleted
    assert preview.kind == ChangeKind.STRUCTURAL


def test_every_rendered_path_must_have_been_read():
    with pytest.raises(ValueError, match="no entry for rendered path"):
        diff_files({"a.yml": b"x"}, {}, ["a.yml"])


def test_secrets_never_reach_the_preview(campaign, rendered):
    node = _on_node(rendered)
    secret = context_for(campaign)["secrets"]["POSTGRES_PASSWORD"].encode()
    node[".env"] = node[".env"].replace(secret, b"old-password-value").replace(b"HTTP_PORT=18000", b"HTTP_PORT=1")
    preview = preview_render(campaign, rendered, node)
    env = _by_path(preview)[".env"]
    shown = env.unified_diff + env.before + env.after + str(preview.as_dict())
    assert "old-password-value" not in shown and secret.decode() not in shown
    assert "-POSTGRES_PASSWORD=[redacted]\n" in env.unified_diff
    assert "+POSTGRES_PASSWORD=[redacted] (changed)\n" in env.unified_diff
    assert "REDIS_PASSWORD=[redacted]\n" in env.after  # unchanged secrets show as unchanged
    assert "REDIS_PASSWORD=[redacted] (changed)" not in env.unified_diff


def test_the_preview_hash_is_stable_and_covers_both_sides(campaign, rendered):
    node = _on_node(rendered)
    first = preview_render(campaign, rendered, node).preview_hash
    assert first == preview_render(campaign, dict(reversed(rendered.items())), dict(node)).preview_hash
    assert len(first) == 64

    node_changed = dict(node, **{"nginx/nginx.conf": node["nginx/nginx.conf"] + b"# hand edit\n"})
    assert preview_render(campaign, rendered, node_changed).preview_hash != first
    other_render = render(campaign, context_for(campaign, image_tag="v2.11.0"), include_env=True)
    assert preview_render(campaign, other_render, node).preview_hash != first
    assert preview_render(campaign, rendered, node, managed=["x"]).preview_hash != first


def test_side_by_side_html_escapes_the_text():
    html = side_by_side_html("a\n<script>alert(1)</script>\n", "a\n<b>&amp;</b>\n")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "&lt;b&gt;&amp;amp;&lt;/b&gt;" in html
    assert html.lstrip().startswith("<table")


def test_as_dict_is_json_ready(campaign, rendered):
    import json

    node = _on_node(rendered)
    node["nginx/nginx.conf"] = None
    data = json.loads(json.dumps(preview_render(campaign, rendered, node).as_dict()))
    assert data["kind"] == "structural"
    assert {"path": "nginx/nginx.conf", "status": "missing", "kind": "structural"}.items() <= data["files"][1].items()
