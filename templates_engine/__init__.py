"""Render a release's template set for an instance, preview it, check env coverage and drift.

Pure Python: strings, paths and dicts in, results out. No Django, no ORM, no SSH; reading and writing
files on a node is the execution drivers' job. Nothing of the panel (`ccp`, `instances`) is imported:
every error raised here is a `TemplateEngineError`, which the panel turns into its own where it calls in.

Render context (what `render` expects; `example_context` builds a placeholder one):

    {
        "instance": {
            "slug": "acme",                     # DNS-safe, unique
            "name": "ACME Inc.",
            "compose_project": "ccp-acme",      # COMPOSE_PROJECT_NAME, unique per node
            "domain": "acme.example.org",
            "ports": {"http": 18080},           # one per name in the set's manifest `ports`
            "profiles": ["monitoring"],         # enabled optional profiles (COMPOSE_PROFILES)
            "is_registered": False,             # True: installed by the install script, no .env render
        },
        "image_tag": "v2.10.3",                 # instance override, else the release's tag
        "registry": "registry.example.org",     # prefix of the application images, no trailing /
        "secrets": {"POSTGRES_PASSWORD": "..."},# every name in the manifest `secrets` (decrypted)
        "node": {"name": "node-1", "address": "node-1.example.org"},
        "release": {"version": "v2.10.3"},
    }

Every value that a template prints must exist (a missing key or a None value is a `RenderError` naming
the variable, the file and the line) and be single-line. Extra keys are allowed.

Typical use by a release upgrade:

    template_set = load_template_set(settings.CCP_TEMPLATE_ROOT, release.template_set)
    files = render(template_set, context, include_env=not instance.is_registered)
    actual = {path: driver.read_file(...) or None for path in files}      # None: absent on the node
    preview = preview_render(template_set, files, actual)                  # diff + preview_hash
    coverage = env_coverage(files[template_set.compose_file].content.decode(), parse_env(env_text),
                            also_required=template_set.required_env)
"""

from .context import PLACEHOLDER_REGISTRY, example_context
from .diff import (
    REDACTED,
    ChangeKind,
    FileDiff,
    FileStatus,
    Preview,
    diff_files,
    preview_hash,
    preview_render,
    side_by_side_html,
)
from .drift import DriftItem, DriftReport, check_drift, compare_compose
from .envfile import (
    Coverage,
    EnvAssignment,
    VariableRef,
    compose_variables,
    env_assignments,
    env_coverage,
    parse_env,
    with_env_value,
)
from .errors import ComposeFileError, EnvFileError, RenderError, TemplateEngineError, TemplateSetError, UnsafePathError
from .render import RenderedFile, env_value, render, write_rendered
from .sets import HealthCheck, ManagedFile, TemplateSet, clear_template_set_cache, list_template_sets, load_template_set

__all__ = [
    "PLACEHOLDER_REGISTRY",
    "REDACTED",
    "ChangeKind",
    "ComposeFileError",
    "Coverage",
    "DriftItem",
    "DriftReport",
    "EnvFileError",
    "FileDiff",
    "FileStatus",
    "HealthCheck",
    "ManagedFile",
    "Preview",
    "RenderError",
    "RenderedFile",
    "TemplateSet",
    "TemplateEngineError",
    "TemplateSetError",
    "UnsafePathError",
    "EnvAssignment",
    "VariableRef",
    "check_drift",
    "clear_template_set_cache",
    "compare_compose",
    "compose_variables",
    "diff_files",
    "env_assignments",
    "env_coverage",
    "env_value",
    "example_context",
    "list_template_sets",
    "load_template_set",
    "parse_env",
    "preview_hash",
    "preview_render",
    "render",
    "side_by_side_html",
    "with_env_value",
    "write_rendered",
]
