"""Work on many instances at once: nodes in parallel, at most `per_node` instances of one node at a time.

Multi-instance previews and the nightly drift report both read instances this way: each read is one
`tar` over the node's shared connection, so a node is never asked for more than its share while the
others wait.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed

from django.db import connections


def map_per_node(
    instances: Iterable,
    work: Callable[[object], object],
    *,
    per_node: int,
    on_done: Callable[[object, object], None] | None = None,
    thread_name_prefix: str = "ccp-per-node",
) -> dict[int, object]:
    """`work(instance)` for every instance; returns {instance.pk: result}. `on_done(instance, result)`
    runs in the calling thread as each finishes (progress). `work` must not raise."""
    per_node = max(1, per_node)
    by_node = defaultdict(list)
    for instance in instances:
        by_node[instance.node_id].append(instance)
    if not by_node:
        return {}
    gates = {node_id: threading.BoundedSemaphore(per_node) for node_id in by_node}
    # Enough threads for every node to use its share; submitted round-robin over the nodes.
    workers = max(1, sum(min(per_node, len(group)) for group in by_node.values()))
    ordered = [group[i] for i in range(max(map(len, by_node.values()))) for group in by_node.values() if i < len(group)]

    def one(instance):
        try:
            with gates[instance.node_id]:
                return instance, work(instance)
        finally:
            connections.close_all()  # this thread's own database connection

    results = {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_name_prefix) as pool:
        for future in as_completed([pool.submit(one, instance) for instance in ordered]):
            instance, result = future.result()
            results[instance.pk] = result
            if on_done is not None:
                on_done(instance, result)
    return results
