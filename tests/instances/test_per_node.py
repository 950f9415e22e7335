"""map_per_node: nodes in parallel, never more than `per_node` instances of one node at a time, every
result returned, progress reported in the calling thread, a failure raised there."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from instances.per_node import map_per_node


@dataclass(frozen=True)
class Item:
    pk: int
    node_id: int


def test_nodes_run_in_parallel_within_their_limit():
    items = [Item(pk=n, node_id=n % 3) for n in range(12)]
    lock = threading.Lock()
    running: dict[int, int] = {}
    most: dict[int, int] = {}
    overlapping_nodes = set()

    def work(item):
        with lock:
            running[item.node_id] = running.get(item.node_id, 0) + 1
            most[item.node_id] = max(most.get(item.node_id, 0), running[item.node_id])
            if sum(1 for count in running.values() if count) > 1:
                overlapping_nodes.add(item.node_id)
        time.sleep(0.05)
        with lock:
            running[item.node_id] -= 1
        return item.pk * 10

    seen_in = []
    results = map_per_node(items, work, per_node=2, on_done=lambda item, result: seen_in.append(threading.get_ident()))
    assert results == {n: n * 10 for n in range(12)}
    assert most == {0: 2, 1: 2, 2: 2}
    assert overlapping_nodes, "the nodes never ran at the same time"
    assert set(seen_in) == {threading.get_ident()} and len(seen_in) == 12


def test_a_failure_is_raised_in_the_calling_thread():
    def work(item):
        if item.pk == 3:
            raise RuntimeError("node 1 went away")
        return item.pk

    with pytest.raises(RuntimeError, match="went away"):
        map_per_node([Item(pk=n, node_id=n % 2) for n in range(6)], work, per_node=1)


def test_nothing_to_do():
    assert map_per_node([], lambda item: item, per_node=2) == {}
