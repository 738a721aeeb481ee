"""The black-box list-append checker: one hand-built history per anomaly, generated valid
histories (serial, and snapshot isolation with write skew), and deliberately broken ones.

Hand-built transactions are concurrent (invoked at 0, completed at 1000) unless a test
gives times, so real-time edges appear only where a test asks for them. Key ``k0`` is
written ``0`` in ops, and so on.
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsqlbench.checkers.elle import MODELS, check_list_append
from dsqlbench.checkers.history import HistoryError, from_dicts, to_dicts
from dsqlbench.checkers.synthetic import snapshot_history
from dsqlbench.errors import UserError

SI, STRONG = "snapshot-isolation", "strong-snapshot-isolation"


def t(id, *ops, type="ok", invoke=0, complete=1000, process=None):
    return {"id": id, "process": id if process is None else process, "type": type,
            "ops": [list(op) for op in ops], "invoke_ns": invoke, "complete_ns": complete}


def a(key, value):
    return ("append", key, value)


def r(key, values):
    return ("r", key, values)


def check(history, **kwargs):
    verdict = check_list_append(history, **kwargs)
    json.dumps(verdict)  # the verdict goes into summary.json as it is
    return verdict


# --- one history per anomaly -------------------------------------------------------------

def test_g0_write_cycle():
    history = [t(1, a(0, 1), a(1, 1)), t(2, a(0, 2), a(1, 2)),
               t(3, r(0, [1, 2]), r(1, [2, 1]))]
    v = check(history)
    assert not v["valid"] and v["forbidden"] == ["G0"]
    assert v["anomalies"] == {"G0": 2}  # both ww edges lie on the cycle
    # One cycle, found from either edge, is shown once.
    assert v["witnesses"]["G0"] == [
        "T1 -ww(k0)-> T2 -ww(k1)-> T1: T2 appended 2 after T1's 1 on k0; "
        "T1 appended 1 after T2's 2 on k1"]


def test_g1a_aborted_read():
    v = check([t(1, a(0, 1), type="fail"), t(2, r(0, [1]))])
    assert v["forbidden"] == ["G1a"] and v["anomalies"] == {"G1a": 1}
    assert v["witnesses"]["G1a"] == ["T2 read k0 = [1], including 1 appended by T1, which failed"]


def test_dirty_update_as_elle_names_it():
    # Elle's "direct" dirty update: T1 failed appending 1, T2 committed 2 on top of it.
    v = check([t(1, a(0, 1), type="fail"), t(2, a(0, 2)), t(3, r(0, [1, 2]))])
    assert not v["valid"] and v["anomalies"] == {"G1a": 1, "dirty-update": 1}
    assert v["forbidden"] == ["G1a", "dirty-update"]
    assert v["witnesses"]["dirty-update"] == [
        "k0: T2 appended 2 after 1, appended by T1, which failed"]
    # Elle's "indirect" one: an info append between them does not tell either way.
    v = check([t(1, a(0, 1), type="fail"), t(2, a(0, 2), type="info"), t(3, a(0, 3)),
               t(4, r(0, [1, 2, 3]))])
    assert v["anomalies"]["dirty-update"] == 1
    assert v["witnesses"]["dirty-update"] == [
        "k0: T3 appended 3 after 1 (then [2], of unknown outcome), appended by T1, which failed"]
    # An aborted read with nothing committed after it is G1a alone; committed appends
    # before a failed one, or info ones after it, are no dirty update.
    v = check([t(1, a(0, 1)), t(2, a(0, 2), type="fail"), t(3, a(0, 3), type="info"),
               t(4, r(0, [1, 2, 3]))])
    assert v["anomalies"] == {"G1a": 1}
    assert "dirty-update" in MODELS[SI] and "dirty-update" in MODELS[STRONG]


def test_g1b_intermediate_read():
    v = check([t(1, a(0, 1), a(0, 2)), t(2, r(0, [1])), t(3, r(0, [1, 2]))])
    # Seeing half of T1 also makes a cycle: T1 -wr-> T2 -rw-> T1, as Elle reports too.
    assert v["forbidden"] == ["G-single-item", "G1b"] and v["anomalies"]["G1b"] == 1
    assert "T1 appended before its final append 2" in v["witnesses"]["G1b"][0]


def test_own_intermediate_read_is_fine():
    v = check([t(1, a(0, 1), r(0, [1]), a(0, 2)), t(2, r(0, [1, 2]))])
    assert v["valid"] and v["anomalies"] == {}


def test_g1c_circular_information_flow():
    v = check([t(1, a(0, 1), r(1, [1])), t(2, a(1, 1), r(0, [1]))])
    assert v["forbidden"] == ["G1c"] and v["anomalies"] == {"G1c": 2}
    assert v["witnesses"]["G1c"][0] == (
        "T1 -wr(k0)-> T2 -wr(k1)-> T1: T2 read T1's 1 on k0; T1 read T2's 1 on k1")


def test_g_single_read_skew():
    # T2 sees T1's append to k1 but not its append to k0: a fractured snapshot.
    v = check([t(1, a(0, 1), a(1, 1)), t(2, r(0, []), r(1, [1])), t(3, r(0, [1]))])
    assert v["forbidden"] == ["G-single-item"] and v["anomalies"] == {"G-single-item": 1}
    assert v["witnesses"]["G-single-item"] == [
        "T2 -rw(k0)-> T1 -wr(k1)-> T2: T2 read k0 empty, missing T1's 1; T2 read T1's 1 on k1"]


def test_lost_update():
    # Both read the empty list and appended; the later commit dropped the other's append.
    history = [t(1, r(0, []), a(0, 1)), t(2, r(0, []), a(0, 2)), t(3, r(0, [2]))]
    v = check(history)
    assert not v["valid"]
    assert v["anomalies"]["lost-update"] == 1 and "G-single-item" in v["forbidden"]
    assert v["witnesses"]["lost-update"] == [
        "T1 and T2 both read k0 = [], then appended to it"]


def test_write_skew_is_allowed_under_snapshot_isolation():
    history = [t(1, r(0, []), r(1, []), a(0, 1)), t(2, r(0, []), r(1, []), a(1, 1)),
               t(3, r(0, [1]), r(1, [1]))]
    for model in (SI, STRONG):
        v = check(history, model=model)
        assert v["valid"], v
        assert v["anomalies"] == {"G2-item": 2} and v["allowed"] == ["G2-item"]
        assert v["forbidden"] == []
    assert v["witnesses"]["G2-item"] == [
        "T1 -rw(k1)-> T2 -rw(k0)-> T1: T1 read k1 empty, missing T2's 1; "
        "T2 read k0 empty, missing T1's 1"]


def test_g_nonadjacent_is_forbidden_under_snapshot_isolation():
    # T1 -rw-> T2 -wr-> T3 -rw-> T4 -wr-> T1: two rw edges, never adjacent. No snapshot
    # isolation execution can produce it (Cerone and Gotsman), though it is not G-single-item.
    history = [t(1, r(0, []), r(3, [1])), t(2, a(0, 1), a(1, 1)),
               t(3, r(1, [1]), r(2, [])), t(4, a(2, 1), a(3, 1))]
    v = check(history)
    assert v["forbidden"] == ["G-nonadjacent-item"] and v["anomalies"] == {"G-nonadjacent-item": 2}
    assert v["witnesses"]["G-nonadjacent-item"][0].startswith(
        "T1 -rw(k0)-> T2 -wr(k1)-> T3 -rw(k2)-> T4 -wr(k3)-> T1: ")


def test_incompatible_order():
    history = [t(1, a(0, 1)), t(2, a(0, 2)), t(3, r(0, [1, 2])), t(4, r(0, [2, 1]))]
    v = check(history)
    assert "incompatible-order" in v["forbidden"] and v["anomalies"]["incompatible-order"] == 1
    assert v["witnesses"]["incompatible-order"] == [
        "k0: T3 read [1, 2] and T4 read [2, 1]; neither is a prefix of the other"]


def test_garbage_read():
    v = check([t(1, a(0, 1)), t(2, r(0, [1, 7]))])
    assert v["forbidden"] == ["garbage-read"]
    assert v["witnesses"]["garbage-read"] == [
        "T2 read k0 = [1, 7], including [7], which no transaction appended to k0"]


def test_duplicate_elements():
    v = check([t(1, a(0, 1)), t(2, r(0, [1, 1]))])
    assert v["forbidden"] == ["duplicate-elements"]


def test_internal_and_future_reads():
    v = check([t(1, a(0, 1), r(0, [])), t(2, r(1, [5]), a(1, 5))])
    assert v["anomalies"] == {"future-read": 1, "internal": 1}
    assert v["witnesses"]["internal"] == [
        "T1 read k0 = [] but its own earlier ops imply a list ending [1]"]


def test_stale_read_only_with_real_time():
    # T1 was acknowledged at 10 ns; T2 began at 20 ns and still read the empty list.
    history = [t(1, a(0, 1), invoke=0, complete=10), t(2, r(0, []), invoke=20, complete=30)]
    assert check(history, realtime=False)["anomalies"] == {}
    si = check(history, model=SI)
    assert si["valid"] and si["allowed"] == ["G-single-item-realtime", "stale-read"]
    strong = check(history, model=STRONG)
    assert not strong["valid"]
    assert strong["anomalies"] == {"G-single-item-realtime": 1, "stale-read": 1}
    assert strong["witnesses"]["G-single-item-realtime"] == [
        "T2 -rw(k0)-> T1 -rt-> T2: T2 read k0 empty, missing T1's 1; "
        "T1 completed at 10 ns before T2 began at 20 ns"]
    assert strong["witnesses"]["stale-read"] == [
        "T2 (invoked at 20 ns) read k0 = [], missing 1 appended by T1, acknowledged at 10 ns"]


def test_stale_read_of_an_append_nobody_else_read():
    # The acknowledged append is never observed: it still came after every value read.
    history = [t(1, a(0, 1), invoke=0, complete=10), t(2, a(0, 2), invoke=0, complete=10),
               t(3, r(0, [1]), invoke=20, complete=30)]
    v = check(history, model=STRONG)
    assert v["anomalies"]["stale-read"] == 1 and not v["valid"]


def test_concurrent_read_is_not_stale():
    history = [t(1, a(0, 1), invoke=0, complete=10), t(2, r(0, []), invoke=5, complete=30)]
    assert check(history, model=STRONG)["anomalies"] == {}


def test_g0_realtime_needs_the_real_time_edge():
    # T1's append is ordered after T2's, yet T1 finished before T2 began.
    history = [t(1, a(0, 1), invoke=0, complete=10), t(2, a(0, 2), invoke=20, complete=30),
               t(3, r(0, [2, 1]), invoke=40, complete=50)]
    assert check(history, realtime=False)["anomalies"] == {}
    v = check(history, model=STRONG)
    assert v["forbidden"] == ["G0-realtime"] and v["anomalies"] == {"G0-realtime": 1}
    assert check(history, model=SI)["valid"]


# --- transaction types -------------------------------------------------------------------

def test_info_appends_count_once_observed():
    v = check([t(1, a(0, 1), type="info"), t(2, r(0, [1]))])
    assert v["valid"] and v["anomalies"] == {} and v["counts"]["edges"]["wr"] == 1
    assert v["counts"] | {"edges": None} == {"transactions": 2, "ok": 1, "fail": 0,
                                             "info": 1, "edges": None}


def test_reads_of_failed_and_unknown_transactions_are_ignored():
    history = [t(1, a(0, 1)), t(2, r(0, [9, 9]), type="fail"), t(3, r(0, [8]), type="info"),
               t(4, r(0, None), type="info")]
    assert check(history)["anomalies"] == {}


def test_none_read_is_the_empty_list():
    v = check([t(1, r(0, None)), t(2, a(0, 1)), t(3, r(0, [1]))])
    assert v["valid"] and v["counts"]["edges"]["rw"] == 1


def test_real_time_edges_are_counted_after_transitive_reduction():
    history = [t(1, a(0, 1), invoke=0, complete=10), t(4, a(1, 1), invoke=5, complete=15),
               t(2, a(2, 1), invoke=20, complete=30), t(3, a(3, 1), invoke=40, complete=50)]
    # T1 -> T2, T4 -> T2, T2 -> T3; T1 -> T3 is implied.
    assert check(history)["counts"]["edges"]["rt"] == 3
    assert check(history, realtime=False)["counts"]["edges"]["rt"] == 0


# --- the format ----------------------------------------------------------------------------

@pytest.mark.parametrize("bad, message", [
    ([t(1, a(0, 1)), t(2, a(0, 1))], "appended to key 0 more than once"),
    ([t(1, a(0, 1)), t(1, a(0, 2))], "id 1 appears more than once"),
    ([t(1, a(0, 1), type="maybe")], "type = 'maybe'"),
    ([t(1, ("write", 0, 1))], "unknown op 'write'"),
    ([t(1, r(0, [1, "x"]))], "must be a list of integers"),
    ([t(1, a(0, 1), invoke=5, complete=4)], "invoke_ns 5 is after complete_ns 4"),
    ([{"id": 1}], "missing process, type, ops, invoke_ns, complete_ns"),
])
def test_malformed_histories_are_user_errors(bad, message):
    with pytest.raises(HistoryError, match=message):
        check_list_append(bad)


def test_numpy_integers_are_accepted():
    import numpy as np

    history = [t(1, a(np.int64(0), np.int64(1))), t(2, r(0, [1])),
               t(np.int64(3), r(np.int32(0), [np.int64(1)]))]
    txns = from_dicts(history)
    assert txns[2].ops[0] == ("r", 0, (1,)) and type(txns[2].ops[0].value[0]) is int
    assert check(history)["valid"]


def test_unknown_model_is_a_user_error():
    with pytest.raises(UserError, match="unknown consistency model 'serializable'"):
        check_list_append([], model="serializable")


def test_loaded_transactions_round_trip():
    history = snapshot_history(50, seed=3)
    assert to_dicts(from_dicts(history)) == history
    assert check_list_append(from_dicts(history)) == check_list_append(history)


def test_verdict_does_not_depend_on_input_order():
    history = snapshot_history(300, seed=5, first_committer_wins=False)
    shuffled = history[:]
    random.Random(1).shuffle(shuffled)
    assert check(shuffled, model=STRONG) == check(history, model=STRONG)


# --- generated histories ---------------------------------------------------------------

txn_ops = st.lists(st.tuples(st.sampled_from(["r", "append"]), st.integers(0, 4)),
                   min_size=1, max_size=5)
outcomes = st.sampled_from(["ok", "ok", "ok", "fail", "info-committed", "info-aborted"])


def serial_history(plans) -> list[dict]:
    """Run transactions one after the other, each invoked after the last completed."""
    lists: dict[int, list[int]] = {}
    history, next_value = [], 1
    for i, (ops, outcome) in enumerate(plans):
        view = {k: list(v) for k, v in lists.items()}
        recorded = []
        for f, key in ops:
            if f == "r":
                recorded.append(["r", key, list(view.get(key, []))])
            else:
                view.setdefault(key, []).append(next_value)
                recorded.append(["append", key, next_value])
                next_value += 1
        if outcome in ("ok", "info-committed"):
            lists = view
        history.append({"id": i, "process": i % 3, "type": outcome.split("-")[0],
                        "ops": recorded, "invoke_ns": 10 * i, "complete_ns": 10 * i + 5})
    return history


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(txn_ops, outcomes), max_size=30))
def test_serial_histories_are_valid_under_both_models(plans):
    history = serial_history(plans)
    for model in (SI, STRONG):
        v = check_list_append(history, model=model)
        assert v["valid"] and v["anomalies"] == {}, v


def test_snapshot_isolation_history_with_write_skew_is_valid():
    history = snapshot_history(800, seed=11, info_fraction=0.05)
    for model in (SI, STRONG):
        v = check(history, model=model)
        assert v["valid"], v["witnesses"]
        assert "G2-item" in v["allowed"] and v["forbidden"] == []
    assert v["counts"]["fail"] > 0 and v["counts"]["info"] > 0


def test_control_without_first_committer_wins_is_caught():
    v = check(snapshot_history(400, seed=2, keys=5, first_committer_wins=False), model=SI)
    assert not v["valid"]
    assert {"lost-update", "G-single-item"} <= set(v["forbidden"])


def test_control_with_stale_snapshots_is_caught_only_as_stale():
    history = snapshot_history(400, seed=2, snapshot_lag_ns=3_000)
    assert check(history, model=SI)["valid"]
    v = check(history, model=STRONG)
    assert not v["valid"] and v["anomalies"]["stale-read"] > 0
    assert set(v["forbidden"]) <= {"stale-read", "G-single-item-realtime", "G-nonadjacent-item-realtime"}


def test_five_thousand_transactions_check():
    # Speed is measured in tests/bench; here the large history must simply get through.
    v = check_list_append(snapshot_history(5_000, seed=1), model=STRONG)
    assert v["valid"] and v["counts"]["transactions"] == 5_000


def test_cycle_anomalies_carry_elles_names():
    # elle.txn's cycle explainer: with item (never predicate) edges only, one rw is
    # G-single-item, several none adjacent G-nonadjacent-item, adjacent ones G2-item.
    from dsqlbench.checkers.cycles import CYCLE_ANOMALIES
    item_cycles = {"G0", "G1c", "G-single-item", "G-nonadjacent-item", "G2-item"}
    assert set(CYCLE_ANOMALIES) == item_cycles | {name + "-realtime" for name in item_cycles}
    assert {"G-single", "G-nonadjacent", "G-single-realtime"}.isdisjoint(MODELS[STRONG])
