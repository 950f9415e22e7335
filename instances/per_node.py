"""Work on many instances at once: nodes in parallel, at most `per_node` instances of one node at a time.

Multi-instance previews and the nightly drift report both read instances this way: each read is one
`tar` over the node's shared connection, so a node is never asked for more than its share while the
others wait.
"""

from __future__ import annotations

import queue
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable

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
    runs in the calling thread as each finishes (progress). `work` must not raise.

    Each node gets `per_node` threads (fewer if it has fewer instances) taking its instances in turn;
    a thread keeps its database connection for all of them and closes it when it ends (a connection
    per instance would cost more than a preview on a near node)."""
    by_node: dict[object, list] = defaultdict(list)
    for instance in instances:
        by_node[instance.node_id].append(instance)
    done: queue.SimpleQueue = queue.SimpleQueue()

    def drain(todo: queue.SimpleQueue) -> None:
        try:
            while True:
                try:
                    instance = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    done.put((instance, work(instance), None))
                except BaseException as error:  # noqa: BLE001 - raised again in the calling thread
                    done.put((instance, None, error))
        finally:
            connections.close_all()  # this thread's own database connection

    threads = []
    for node_id, group in by_node.items():
        todo: queue.SimpleQueue = queue.SimpleQueue()
        for instance in group:
            todo.put(instance)
        for n in range(min(max(1, per_node), len(group))):
            name = f"{thread_name_prefix}-{node_id}-{n}"
            thread = threading.Thread(target=drain, args=(todo,), name=name, daemon=True)
            thread.start()
            threads.append(thread)
    results = {}
    total = sum(len(group) for group in by_node.values())
    while len(results) < total:
        instance, result, error = done.get()
        if error is not None:
            raise error
        results[instance.pk] = result
        if on_done is not None:
            on_done(instance, result)
    for thread in threads:
        thread.join()
    return results
