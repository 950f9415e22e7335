"""The precheck before every upgrade, in one round trip to the node.

One fixed script answers every question (docker and compose versions, the files the mode needs, the
compose project loads, free disk) in sections; `precheck_verdict` turns them into the same sentences
the checks have always given, in the same order. Building, parsing and running are kept apart.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from django.conf import settings

from instances.commands.compose import compose_argv

from ..runner import StepContext, StepError

MARK = "\x1e"  # starts a section header line: MARK <name> <exit code>

# $1: install directory; $2: 1 to load the compose project, else 0; $3: how many files follow;
# then the files (relative to $1); the rest: the `docker compose …` argv of the project.
# Every section prints a header with its exit code, then its output.
SCRIPT = r"""
dir=$1 load=$2 count=$3
shift 3
section() { printf '\036%s %s\n' "$1" "$2"; }
out=$(docker version --format '{{.Server.Version}}' 2>&1); section docker $?; printf '%s\n' "$out"
out=$(docker compose version --short 2>&1); section compose $?; printf '%s\n' "$out"
while [ "$count" -gt 0 ]; do
    if [ -e "$dir/$1" ]; then section file 0; else section file 1; fi
    printf '%s\n' "$1"
    shift
    count=$((count - 1))
done
if [ "$load" = 1 ]; then
    out=$(cd -- "$dir" && "$@" config --quiet 2>&1); section config $?; printf '%s\n' "$out"
fi
out=$(df -Pk -- "$dir" 2>&1); section df $?; printf '%s\n' "$out"
"""


@dataclass(frozen=True)
class Section:
    name: str
    exit_code: int
    output: str


def precheck_argv(instance, *, need_files: tuple[str, ...], need_compose: bool) -> list[str]:
    return [
        "sh",
        "-c",
        SCRIPT,
        "ccp-precheck",
        instance.install_dir,
        "1" if need_compose else "0",
        str(len(need_files)),
        *need_files,
        *compose_argv(instance),
    ]


def parse_sections(stdout: bytes) -> list[Section]:
    sections = []
    for chunk in stdout.decode(errors="replace").split(MARK)[1:]:
        header, _, output = chunk.partition("\n")
        name, _, code = header.partition(" ")
        sections.append(Section(name, int(code), output.rstrip("\n")))
    return sections


def precheck_verdict(sections: list[Section], *, instance, node, min_free_mb: int) -> str:
    """The precheck's report, or StepError with the first problem found (the order of the checks)."""
    by_name = {s.name: s for s in sections if s.name != "file"}
    missing = {"docker", "compose", "df"} - by_name.keys()
    if missing:
        raise StepError(f"The precheck on {node} did not complete (no answer for {', '.join(sorted(missing))}).")
    docker, compose = by_name["docker"], by_name["compose"]
    if docker.exit_code != 0:
        raise StepError(f"Docker does not answer on {node}: {docker.output.strip()[-300:]}")
    if compose.exit_code != 0:
        raise StepError(f"docker compose v2 is not installed on {node}.")
    lines = [f"docker {docker.output.strip()}", f"compose {compose.output.strip()}"]
    for section in sections:
        if section.name == "file" and section.exit_code != 0:
            path = posixpath.join(instance.install_dir, section.output.strip())
            raise StepError(f"{path} does not exist on {node}.")
    config = by_name.get("config")
    if config is not None and config.exit_code != 0:
        raise StepError(f"The compose project in {instance.install_dir} does not load: {config.output.strip()[-400:]}")
    df = by_name["df"]
    if df.exit_code != 0:
        raise StepError(
            f"Cannot measure the free disk under {instance.install_dir} on {node}: {df.output.strip()[-300:]}"
        )
    free_mb = int(df.output.strip().splitlines()[-1].split()[3]) // 1024
    if free_mb < min_free_mb:
        raise StepError(f"Only {free_mb} MB free under {instance.install_dir}; at least {min_free_mb} MB needed.")
    lines.append(f"{free_mb} MB free")
    return "\n".join(lines)


def precheck(ctx: StepContext, *, need_files: tuple[str, ...] = (), need_compose: bool = True) -> str:
    """Step: the node answers, docker and compose answer, the instance directory has its files (and a
    compose project that loads), and there is free disk — one command on the node."""
    argv = precheck_argv(ctx.instance, need_files=need_files, need_compose=need_compose)
    result = ctx.driver.run(argv, timeout=60)
    return precheck_verdict(
        parse_sections(result.stdout), instance=ctx.instance, node=ctx.node, min_free_mb=settings.CCP_MIN_FREE_DISK_MB
    )
