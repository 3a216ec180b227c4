"""The rollout's batches: the canary alone first, then batches; every dialer once, in the play's order."""
import pytest
from hypothesis import given, strategies as st

import vicireg_rollout as rollout

HOSTS = st.lists(st.text(alphabet="abcdefgh0123456789-", min_size=1, max_size=8), unique=True, max_size=60)
SIZES = st.one_of(st.integers(min_value=1, max_value=30),
                  st.integers(min_value=1, max_value=100).map(lambda n: "%d%%" % n))


@given(HOSTS, st.integers(min_value=0, max_value=5), SIZES)
def test_every_dialer_once_in_order_canary_first_no_batch_too_big(hosts, canary, size):
    out = rollout.batches(hosts, canary, size)
    assert [h for b in out for h in b] == hosts
    assert all(out) and all(len(b) >= 1 for b in out)
    if hosts and canary:
        assert out[0] == hosts[:canary]
    limit = rollout.batch_size(size, len(hosts))
    assert all(len(b) <= limit for b in out[1 if canary else 0:])


def test_twenty_dialers_one_canary_then_quarters():
    hosts = ["d%02d" % i for i in range(1, 21)]
    assert [len(b) for b in rollout.batches(hosts, 1, "25%")] == [1, 5, 5, 5, 4]
    assert [len(b) for b in rollout.batches(hosts, 0, "100%")] == [20]
    assert [len(b) for b in rollout.batches(hosts, 2, 10)] == [2, 10, 8]
    assert rollout.batches([], 1, "25%") == []
    assert rollout.batches(["a", "b", "c"], "1", "2") == [["a"], ["b", "c"]]  # from -e, as strings


@pytest.mark.parametrize("canary,size", [(-1, 1), (True, 1), ("-1", 1), ("x", 1), (1, 0), (1, "0%"), (1, "101%"), (1, "a"),
                                         (1, True), (1, None), (1, "25 percent")])
def test_bad_sizes_are_refused_with_the_variable_named(canary, size):
    with pytest.raises(ValueError, match="vicireg_carriers_(canary|batch)"):
        rollout.batches(["a", "b"], canary, size)
