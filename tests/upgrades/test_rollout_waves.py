"""Wave planning as data: sizes, the spread over nodes, who may start now."""

import pytest

from ccp.errors import CCPError
from upgrades.rollouts.waves import assign_waves, parse_wave_spec, spread_over_nodes, startable, wave_sizes


@pytest.mark.parametrize(
    "total,canary,spec,sizes",
    [
        (6, 1, "2,rest", [1, 2, 3]),
        (20, 1, "1,10%,50%,rest", [1, 1, 2, 10, 6]),
        (8, 0, "rest", [0, 8]),
        (3, 5, "rest", [3]),
        (10, 1, "2", [1, 2, 7]),  # what a spec leaves over is one last wave
        (40, 2, "25%,25%", [2, 10, 10, 18]),
    ],
)
def test_wave_sizes(total, canary, spec, sizes):
    assert wave_sizes(total=total, canary=canary, spec=spec) == sizes
    assert sum(sizes) == total


@pytest.mark.parametrize("spec", ["0", "rest,1", "abc", "150%", "0%", "1;2"])
def test_bad_wave_specs_are_refused_with_a_sentence(spec):
    with pytest.raises(CCPError) as refused:
        parse_wave_spec(spec)
    assert "Wave sizes" in refused.value.message


def test_waves_spread_over_nodes():
    items = [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2), ("c", 1)]
    assert spread_over_nodes(items, lambda i: i[0]) == [("a", 1), ("b", 1), ("c", 1), ("a", 2), ("b", 2), ("a", 3)]
    waves = assign_waves(items, canary=1, spec="2,rest", node_of=lambda i: i[0])
    assert [wave for _, wave in waves] == [0, 1, 1, 2, 2, 2]
    assert {item[0] for item, wave in waves if wave == 1} == {"b", "c"}


def test_startable_keeps_the_per_node_limit_and_the_parallelism():
    candidates = [("a", 1), ("a", 2), ("b", 1), ("c", 1), ("b", 2)]
    node = lambda i: i[0]  # noqa: E731
    chosen = startable(
        candidates=candidates, running_per_node={"c": 1}, per_node_limit=1, running=1, parallelism=0, node_of=node
    )
    assert chosen == [("a", 1), ("b", 1)]
    chosen = startable(
        candidates=candidates, running_per_node={}, per_node_limit=2, running=0, parallelism=3, node_of=node
    )
    assert chosen == [("a", 1), ("a", 2), ("b", 1)]
