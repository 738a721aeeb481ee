"""The bank workload: transfers between two accounts, with a conserved total.

Role: a contention workload whose every transaction writes two keys, so most commits
span adjudicator shards (votes, a final adjudicator, one journal write), and whose
invariant a run can check end to end, like FoundationDB's Cycle workload: money moves
between accounts but the sum over all accounts never changes. A lost update, a torn
(partly applied) commit or a snapshot that mixes two points in time breaks the sum.

Invariants:
- each transfer reads both balances at its ``t_start`` and writes both post-images;
  the two accounts are distinct;
- the accounts are chosen with the workload's ``[ycsb]`` request distribution (so
  ``zipfian`` makes hot accounts), the amount uniformly in ``1..bank.amount_max``, each
  from its own stream of the run seed;
- a balance is stored as 8 little-endian signed bytes, padded to ``load.value_bytes``.
"""

from __future__ import annotations

import numpy as np

from dsqlbench.seeds import BufferedDraws, stream
from dsqlbench.workload.distributions import make_key_chooser, storage_keys
from dsqlbench.workload.ycsb import Operation

BALANCE_BYTES = 8


class TransferOperation(Operation):
    """Move ``amount`` from account ``key`` to account ``key2``."""

    __slots__ = ("key2", "amount")

    def __init__(self, key: int, key_id: int, key2: int, amount: int, value_bytes: int):
        super().__init__("transfer", key, key_id, 0, value_bytes)
        self.key2 = key2
        self.amount = amount


def encode_balance(balance: int, value_bytes: int) -> bytes:
    raw = balance.to_bytes(BALANCE_BYTES, "little", signed=True)
    return raw + bytes(max(0, value_bytes - BALANCE_BYTES))


def decode_balance(value: bytes) -> int:
    return int.from_bytes(value[:BALANCE_BYTES], "little", signed=True)


class BankWorkload:
    def __init__(self, cfg: dict):
        seed = cfg["run"]["seed"]
        self.accounts = cfg["load"]["record_count"]
        assert self.accounts >= 2, "a transfer needs two accounts"
        self.value_bytes = max(cfg["load"]["value_bytes"], BALANCE_BYTES)
        self.initial_balance = cfg["bank"]["initial_balance"]
        self._keys = make_key_chooser(cfg["ycsb"], self.accounts, stream(seed, "workload/keys"))
        amount_rng = stream(seed, "workload/amounts")
        amount_max = cfg["bank"]["amount_max"]
        self._amounts = BufferedDraws(lambda n: amount_rng.integers(1, amount_max + 1, n))
        self._storage_keys = storage_keys(np.arange(self.accounts, dtype=np.int64),
                                          cfg["ycsb"]["insert_order"])

    def load_keys(self) -> np.ndarray:
        return self._storage_keys

    def initial_value(self, key: int) -> bytes:
        return encode_balance(self.initial_balance, self.value_bytes)

    def expected_total(self) -> int:
        return self.accounts * self.initial_balance

    def next_operation(self) -> TransferOperation:
        first = self._keys.next()
        second = self._keys.next()
        while second == first:
            second = self._keys.next()
        keys = self._storage_keys
        return TransferOperation(int(keys[first]), first, int(keys[second]),
                                 self._amounts.next(), self.value_bytes)

    def acknowledge_insert(self, operation) -> None:  # pragma: no cover - bank never inserts
        raise AssertionError("the bank workload does not insert")


def audit(replicas_by_shard, expected_total: int) -> dict:
    """Sum every balance at one snapshot: the newest time every shard can serve."""
    snapshot_ns = min(replica.applied_watermark_ns for replica in replicas_by_shard)
    total = 0
    accounts = 0
    for replica in replicas_by_shard:
        for key in replica.versions:
            version = replica.read(key, snapshot_ns)
            if version is not None and version[1] is not None:
                total += decode_balance(version[1])
                accounts += 1
    return {"snapshot_ns": snapshot_ns, "accounts": accounts, "total_expected": expected_total,
            "total_found": total, "ok": total == expected_total}
