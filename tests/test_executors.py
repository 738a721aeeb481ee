"""Executors: one interface; the same sweep gives the same simulated bytes in this
process, in a local process pool and on a Dask cluster."""

import json
import logging
import os

import pytest

from dsqlbench.cli import main
from dsqlbench.errors import UserError
from dsqlbench.executors import InlineExecutor, open_pool

SWEEP = """
[sweep]
name = "same"
workload = "hot-key"
set = ["load.record_count=500", "clients.count=8", "run.duration_s=0.3", "run.warmup_s=0.1"]

[[sweep.points]]
label = "baseline"

[[sweep.points]]
label = "qp behind 4 ms, t_start from now"
set = {"topology.clock.qp.offset_us" = -4000.0, "topology.clock.t_start_from" = "now"}

[[sweep.points]]
label = "adjudicator ahead 4 ms"
set = {"topology.clock.adjudicator.offset_us" = 4000.0}
"""


def _square(x):
    return x * x


def _fail(_):
    raise ValueError("no")


def test_the_inline_executor_is_a_concurrent_futures_executor():
    executor = InlineExecutor()
    assert executor.submit(_square, 3).result() == 9
    assert isinstance(executor.submit(_fail, 1).exception(), ValueError)
    executor.shutdown()
    with pytest.raises(RuntimeError):
        executor.submit(_square, 1)


def test_pool_options_are_checked():
    with pytest.raises(UserError, match="--cluster needs --executor dask"):
        with open_pool("local", cluster="tcp://127.0.0.1:1"):
            pass
    with pytest.raises(UserError, match="--executor"):
        with open_pool("slurm"):
            pass


def test_a_local_process_pool_runs_calls_in_other_processes():
    with open_pool("local", jobs=2) as pool:
        assert pool.window == 4
        pids = {pool.executor.submit(os.getpid).result() for _ in range(4)}
    assert os.getpid() not in pids


def simulated_bytes(out):
    return {run.name: json.dumps(json.loads((run / "summary.json").read_text())["simulated"],
                                 sort_keys=True)
            for run in sorted(out.iterdir()) if run.is_dir()}


def sweep(capsys, path, out, *options):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", str(path), "--out", str(out), *options])
        raise SystemExit(0)  # main returns on success
    _, err = capsys.readouterr()
    assert exit_info.value.code == 0, err
    return simulated_bytes(out)


def test_local_processes_and_dask_clusters_give_identical_simulated_results(tmp_path, capsys):
    pytest.importorskip("distributed", reason="Dask is the optional 'cluster' extra")
    from distributed import LocalCluster

    path = tmp_path / "same.toml"
    path.write_text(SWEEP)
    local = sweep(capsys, path, tmp_path / "local", "--jobs", "2")
    assert sorted(local) == ["p000-r0", "p001-r0", "p002-r0"]
    # The skewed points really differ from the baseline (stale reads, waits).
    assert local["p000-r0"] != local["p001-r0"]
    assert sweep(capsys, path, tmp_path / "dask", "--executor", "dask", "--jobs", "2") == local
    # An existing scheduler (--cluster): here one this test starts.
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster:
        remote = sweep(capsys, path, tmp_path / "remote", "--cluster", cluster.scheduler_address)
    assert remote == local
