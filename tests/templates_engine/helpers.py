"""Shared values and helpers of the template engine tests."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

from templates_engine import TemplateSet, example_context

REPO = Path(__file__).resolve().parents[2]
DEPLOY_ROOT = REPO / "deploy_templates"
CANONICAL = REPO / "tests" / "fixtures" / "canonical" / "docker-compose.prod.yml"

PROFILE_COMBINATIONS = {
    "campaign": [[], ["newsletter"], ["monitoring"], ["newsletter", "monitoring"]],
    "testbed": [[], ["extra"]],
}
SET_PROFILES = [(name, profiles) for name, combos in PROFILE_COMBINATIONS.items() for profiles in combos]


def context_for(template_set: TemplateSet, slug: str = "acme", port_base: int = 18000, **overrides) -> dict:
    """A realistic context: the example shape with a real-looking registry, tag and release."""
    context = example_context(
        template_set, slug=slug, port_base=port_base, registry="registry.example.org", image_tag="v2.10.3"
    )
    context.update(overrides)
    return context


def find_compose_cli() -> tuple[list[str] | None, str]:
    """`docker compose` (v2 plugin), else a standalone v2 `docker-compose` (PATH or this venv)."""
    candidates = [["docker", "compose"]]
    standalone = shutil.which("docker-compose") or shutil.which("docker-compose", path=str(Path(sys.executable).parent))
    if standalone:
        candidates.append([standalone])
    tried = []
    for command in candidates:
        try:
            result = subprocess.run([*command, "version"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            tried.append(f"{' '.join(command)}: {exc}")
            continue
        match = re.search(r"version v?(\d+)\.", result.stdout)
        if result.returncode == 0 and match and int(match.group(1)) >= 2:
            return command, ""
        tried.append(f"{' '.join(command)}: {(result.stderr or result.stdout).strip()[:200]}")
    return None, "no docker compose v2 found (" + "; ".join(tried) + ")"


def make_set(root: Path, set_name: str = "custom", *, sources: dict[str, str] | None = None, **manifest) -> Path:
    """Write a small template set under `root` (a valid one unless the arguments say otherwise)."""
    import yaml

    texts = {
        "docker-compose.yml.j2": "services:\n  app:\n    image: {{ registry }}/app:${IMAGE_TAG:-{{ image_tag }}}\n",
        "env.j2": "COMPOSE_PROJECT_NAME={{ instance.compose_project }}\n",
        **(sources or {}),
    }
    for path, text in texts.items():
        target = root / set_name / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    data = {
        "name": set_name,
        "compose_file": "docker-compose.yml",
        "env_file": ".env",
        "env_template": "env.j2",
        "files": {"docker-compose.yml": "docker-compose.yml.j2"},
        "protected_paths": ["mkdocs/"],
        **manifest,
    }
    (root / set_name / "manifest.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    return root
