"""Every deliberately broken variant is caught by both checkers, and they agree."""

import pytest

from dsqlbench.sim import controls
from dsqlbench.sim.run import check_history, simulate
from dsqlbench.checkers.verdict import history_from_table
from tests.sim.conftest import small_config


def checked(*overrides, strict=True, duration_s=0.6):
    cfg = small_config("list-append", "clients.count=24", *overrides, duration_s=duration_s)
    output = simulate(cfg)
    history = history_from_table(output.tables["history"])
    verdict = check_history(output.simulated, history, strict=strict)
    return output.simulated["checks"], verdict


def test_a_clean_list_append_run_passes_both_checkers():
    checks, verdict = checked()
    assert verdict["ok"] and verdict["agree"], verdict
    assert checks["elle"]["counts"]["ok"] > 100


def test_no_first_committer_wins_is_caught():
    with controls.no_first_committer_wins():
        checks, verdict = checked()
    assert not checks["oracle"]["ok"]
    assert not checks["elle"]["valid"]
    assert verdict["agree"] and not verdict["ok"]


def test_crossbar_releasing_above_its_watermark_is_caught():
    with controls.crossbar_above_watermark():
        checks, verdict = checked()
    assert checks["oracle"]["wrong_reads"] > 0
    assert not checks["elle"]["valid"]
    assert verdict["agree"] and not verdict["ok"]


def test_a_qp_trusting_a_lying_clock_is_caught():
    checks, verdict = checked("topology.clock.qp.offset_us=-5000",
                              'topology.clock.t_start_from="now"')
    assert checks["oracle"]["stale_reads"] > 0 and checks["oracle"]["ok"]
    assert "stale-read" in checks["elle"]["forbidden"]
    assert verdict["agree"] and not verdict["ok"]



def test_stale_reads_are_allowed_under_plain_snapshot_isolation():
    checks, verdict = checked("topology.clock.qp.offset_us=-5000",
                              'topology.clock.t_start_from="now"', strict=False)
    assert checks["oracle"]["stale_reads"] > 0  # still measured and reported ...
    assert verdict["ok"] and verdict["agree"]  # ... but not forbidden by the model
