"""A read at t_start waits until its replica has applied everything up to t_start."""

import simpy

from dsqlbench.checkers.oracle import Oracle
from dsqlbench.components.messages import StorageBatch
from dsqlbench.metrics import Recorder
from dsqlbench.sim.cluster import Cluster
from dsqlbench.workload.ycsb import YcsbWorkload
from tests.sim.conftest import small_config


def make_cluster():
    cfg = small_config("ycsb-c")
    env = simpy.Environment()
    keys = YcsbWorkload(cfg).load_keys()
    cluster = Cluster(env, cfg, Recorder(0, 10**9), Oracle(), keys)
    cluster.load(keys, lambda _txn, key: b"loaded")
    return env, cluster, int(keys[0])


def test_read_on_a_lagging_replica_waits_for_the_batch_that_covers_it():
    env, cluster, key = make_cluster()  # not started: nothing advances the replicas
    shard = cluster.storage_ranges.shard_of(key)
    node = cluster.local_replica(0, shard)
    txn = cluster.qps[0].begin(1, 1, 5_000_000)  # the QP core alone: no commit follows
    assert txn.t_start_ns > node.core.applied_watermark_ns
    seen = {}

    def reader():
        yield env.timeout(5_000_000)
        version, wait_ns = yield from cluster.read(0, txn, key)
        seen.update(version=version, wait_ns=wait_ns, at=env.now)

    def crossbar():
        yield env.timeout(9_000_000)  # the replica catches up at 9 ms + delivery
        batch = StorageBatch(shard, txn.t_start_ns + 1, (key,), (txn.t_start_ns - 10,), (b"new",))
        node.last_arrival_ns = env.now + 250_000
        node.inbound.append((node.last_arrival_ns, batch))
        cluster._wake_waiters(node, node.last_arrival_ns, batch.watermark_ns)

    env.process(reader())
    env.process(crossbar())
    env.run(until=20_000_000)
    assert seen["version"] == (txn.t_start_ns - 10, b"new")  # the commit below t_start
    assert seen["wait_ns"] >= 9_250_000 - 5_000_000 - 1_000_000  # waited for the batch
    assert node.core.applied_watermark_ns >= txn.t_start_ns


def test_read_that_is_already_covered_does_not_wait():
    env, cluster, key = make_cluster()
    txn = cluster.qps[0].begin(1, 1, 0)
    txn.t_start_ns = 1  # the load's timestamp: every replica has it
    result = {}

    def reader():
        result["value"] = yield from cluster.read(0, txn, key)

    env.process(reader())
    env.run()
    version, wait_ns = result["value"]
    assert wait_ns == 0 and version == (1, b"loaded")
