"""Planning a rollout's waves: pure functions of counts and specs (no ORM), tested as data.

Wave 0 is the canary (`canary_size` instances alone). The waves after it follow a spec of comma-separated
sizes: a number of instances ("5"), a percentage of all the rollout's instances ("10%", rounded up, at
least one) or "rest" (everything left). Instances a spec leaves over form one last wave.
"""

import math
import re
from collections import defaultdict

from ccp.errors import CCPError

_TOKEN = re.compile(r"^(?:(\d+)|(\d+(?:\.\d+)?)%|rest)$")


def parse_wave_spec(spec: str) -> list[str]:
    """The spec's tokens, checked; raises CCPError with a sentence on a bad one."""
    tokens = [t.strip().lower().replace(" ", "") for t in (spec or "rest").split(",")]
    for token in tokens:
        match = _TOKEN.match(token)
        if not match:
            raise CCPError(
                f'Wave sizes: {token!r} is not a number of instances, a percentage or "rest" (e.g. "1,10%,50%,rest").'
            )
        if (match.group(1) and int(match.group(1)) == 0) or (match.group(2) and float(match.group(2)) <= 0):
            raise CCPError(f"Wave sizes: {token!r} would be an empty wave.")
        if match.group(2) and float(match.group(2)) > 100:
            raise CCPError(f"Wave sizes: {token!r} is more than all the instances.")
    if "rest" in tokens[:-1]:
        raise CCPError('Wave sizes: "rest" can only be the last wave.')
    return tokens


def wave_sizes(*, total: int, canary: int, spec: str) -> list[int]:
    """Sizes of wave 0 (the canary, possibly 0) and of every wave after it; they add up to `total`."""
    tokens = parse_wave_spec(spec)
    canary = min(canary, total)
    sizes = [canary]
    left = total - canary
    for token in tokens:
        if left <= 0:
            break
        if token == "rest":
            size = left
        elif token.endswith("%"):
            size = max(1, math.ceil(total * float(token[:-1]) / 100))
        else:
            size = int(token)
        size = min(size, left)
        sizes.append(size)
        left -= size
    if left > 0:
        sizes.append(left)
    return sizes


def spread_over_nodes(items: list, node_of) -> list:
    """Order items round-robin over their nodes (keeping each node's order), so that every wave, taken
    from the front of this order, spreads over as many nodes as it can and runs in parallel."""
    by_node = defaultdict(list)
    for item in items:
        by_node[node_of(item)].append(item)
    groups = list(by_node.values())
    return [group[i] for i in range(max(map(len, groups), default=0)) for group in groups if i < len(group)]


def assign_waves(items: list, *, canary: int, spec: str, node_of) -> list[tuple[object, int]]:
    """(item, wave) for every item, in rollout order."""
    ordered = spread_over_nodes(items, node_of)
    assigned, start = [], 0
    for wave, size in enumerate(wave_sizes(total=len(ordered), canary=canary, spec=spec)):
        assigned.extend((item, wave) for item in ordered[start : start + size])
        start += size
    return assigned


def startable(
    *, candidates: list, running_per_node: dict, per_node_limit: int, running: int, parallelism: int, node_of
) -> list:
    """Which of `candidates` (open items of the current wave, in order) may start now: at most
    `per_node_limit` running on a node, and at most `parallelism` running in all (0: no such limit)."""
    per_node = dict(running_per_node)
    chosen = []
    for item in candidates:
        if parallelism and running + len(chosen) >= parallelism:
            break
        node = node_of(item)
        if per_node.get(node, 0) >= per_node_limit:
            continue
        per_node[node] = per_node.get(node, 0) + 1
        chosen.append(item)
    return chosen
