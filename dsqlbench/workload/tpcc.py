"""A TPC-C subset over SQL: the nine tables, their loader, the five transactions, the
standard mix, and the specification's consistency conditions 1-4.

Role: ``setup(engine, scale, rng)`` creates the schema (``workloads/sql/tpcc.sql``) and
returns every ``(key, value)`` pair to load into storage (clause 4.3.3.1's initial
population); ``TpccWorkload.next_transaction(rng, w_id)`` draws one transaction's kind
and inputs (clause 5.2.3's mix 45/43/4/4/4 and clause 2's input rules);
``run_transaction(session, txn, scale)`` is the transaction program, a generator that
sends its SQL through the session (so the simulator drives it like any statement) and
returns a ``TpccOutcome``; ``check_consistency(session)`` returns the violations of
consistency conditions 1-4 (clause 3.3.2), read in one snapshot.

Scale: ``TpccScale`` is clause 4.2's cardinalities per warehouse (100,000 items,
10 districts, 3,000 customers and orders per district, the last 900 orders new).
``TpccScale.small()`` shrinks items, customers and orders for tests (a documented knob,
not a compliant TPC-C): customers' last names then come from the first
``customers_per_district`` syllable numbers (so every name drawn exists), and NURand
ranges follow the smaller counts.

Invariants: every random choice comes from the generator passed in (loader and
inputs); timestamps in loaded rows are a fixed load time; a program that meets an
error rolls back and reports it (40001 is the retryable one), and New-Order's 1%
invalid item rolls back on purpose, as the specification requires.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from dsqlbench.config import shipped_dir
from dsqlbench.errors import ConfigError
from dsqlbench.sql.errors import SqlError

SCHEMA_PATH = shipped_dir() / "sql" / "tpcc.sql"
LOAD_TIME = dt.datetime(2025, 1, 1)
SYLLABLES = ("BAR", "OUGHT", "ABLE", "PRI", "PRES", "ESE", "ANTI", "CALLY", "ATION", "EING")
KINDS = ("new_order", "payment", "order_status", "delivery", "stock_level")
MIX_PERCENT = (45, 43, 4, 4, 4)  # clause 5.2.3's minimum mix, New-Order taking the rest
_ALNUM = np.frombuffer(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", dtype=np.uint8)
_LETTERS = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)


@dataclass(frozen=True)
class TpccScale:
    warehouses: int = 1
    items: int = 100_000
    districts_per_warehouse: int = 10
    customers_per_district: int = 3000   # also the initial orders per district
    new_orders_per_district: int = 900   # the last orders of each district are new

    @classmethod
    def small(cls, warehouses: int = 1) -> "TpccScale":
        """A test-sized database: 200 items, 30 customers and orders per district."""
        return cls(warehouses, items=200, customers_per_district=30, new_orders_per_district=9)

    def __post_init__(self):
        for name in ("warehouses", "items", "districts_per_warehouse", "customers_per_district"):
            if getattr(self, name) < 1:
                raise ConfigError("tpcc", f"scale.{name}", "must be >= 1")
        if self.districts_per_warehouse > 10:
            raise ConfigError("tpcc", "scale.districts_per_warehouse", "must be <= 10 (s_dist_01..10)")
        if not 0 <= self.new_orders_per_district <= self.customers_per_district:
            raise ConfigError("tpcc", "scale.new_orders_per_district",
                              "must be between 0 and customers_per_district")

    @property
    def orders_per_district(self) -> int:
        return self.customers_per_district

    @property
    def last_names(self) -> int:
        return min(1000, self.customers_per_district)


def last_name(number: int) -> str:
    """Clause 4.3.2.3: three syllables from the digits of ``number`` (0..999)."""
    return SYLLABLES[number // 100] + SYLLABLES[(number // 10) % 10] + SYLLABLES[number % 10]


def nurand(rng: np.random.Generator, a: int, x: int, y: int, c: int) -> int:
    """Clause 2.1.6: NURand(A, x, y) = (((random(0, A) | random(x, y)) + C) % (y-x+1)) + x."""
    r1 = int(rng.integers(0, a, endpoint=True))
    r2 = int(rng.integers(x, y, endpoint=True))
    return ((r1 | r2) + c) % (y - x + 1) + x


def schema_sql() -> str:
    try:
        return SCHEMA_PATH.read_text()
    except OSError as error:
        raise ConfigError(str(SCHEMA_PATH), None, f"cannot read the TPC-C schema: {error.strerror}") from None


# --- loading ----------------------------------------------------------------------------

def _strings(rng: np.random.Generator, n: int, low: int, high: int, alphabet=_ALNUM) -> list[str]:
    """``n`` random strings with lengths in [low, high], drawn in bulk."""
    lengths = rng.integers(low, high, size=n, endpoint=True)
    chars = alphabet[rng.integers(0, len(alphabet), size=int(lengths.sum()))].tobytes().decode()
    out, start = [], 0
    for length in lengths.tolist():
        out.append(chars[start:start + length])
        start += length
    return out


def _original(rng: np.random.Generator, texts: list[str]) -> list[str]:
    """Clause 4.3.3.1: 10% of the values carry "ORIGINAL" at a random position."""
    marks = (rng.random(len(texts)) < 0.1).tolist()
    positions = rng.random(len(texts)).tolist()
    out = []
    for text, mark, where in zip(texts, marks, positions):
        if mark:
            at = int(where * (len(text) - 8))
            text = text[:at] + "ORIGINAL" + text[at + 8:]
        out.append(text)
    return out


def _money(rng: np.random.Generator, n: int, low_cents: int, high_cents: int) -> list[Decimal]:
    cents = rng.integers(low_cents, high_cents, size=n, endpoint=True).tolist()
    return [Decimal(c).scaleb(-2) for c in cents]


def _rate(rng: np.random.Generator, n: int, high_ten_thousandths: int) -> list[Decimal]:
    values = rng.integers(0, high_ten_thousandths, size=n, endpoint=True).tolist()
    return [Decimal(v).scaleb(-4) for v in values]


def _address(rng: np.random.Generator, n: int) -> list[tuple]:
    streets1, streets2, cities = (_strings(rng, n, 10, 20) for _ in range(3))
    states = _strings(rng, n, 2, 2, _LETTERS)
    zips = [z + "11111" for z in _strings(rng, n, 4, 4, _DIGITS)]
    return list(zip(streets1, streets2, cities, states, zips))


def load_rows(scale: TpccScale, rng: np.random.Generator) -> dict[str, list[tuple]]:
    """Clause 4.3.3.1's initial population, per table, rows in column order."""
    tables: dict[str, list[tuple]] = {name: [] for name in (
        "item", "warehouse", "stock", "district", "customer", "history", "orders",
        "new_order", "order_line")}
    n_items = scale.items
    tables["item"] = list(zip(range(1, n_items + 1),
                              rng.integers(1, 10_000, size=n_items, endpoint=True).tolist(),
                              _strings(rng, n_items, 14, 24), _money(rng, n_items, 100, 10_000),
                              _original(rng, _strings(rng, n_items, 26, 50))))
    for w in range(1, scale.warehouses + 1):
        _load_warehouse(tables, scale, rng, w)
    return tables


def _load_warehouse(tables: dict, scale: TpccScale, rng: np.random.Generator, w: int) -> None:
    ytd_district = Decimal("30000.00")
    tables["warehouse"].append((w, _strings(rng, 1, 6, 10)[0], *_address(rng, 1)[0],
                                _rate(rng, 1, 2000)[0], ytd_district * scale.districts_per_warehouse))
    n_items = scale.items
    dists = [_strings(rng, n_items, 24, 24) for _ in range(10)]
    quantities = rng.integers(10, 100, size=n_items, endpoint=True).tolist()
    data = _original(rng, _strings(rng, n_items, 26, 50))
    for i in range(n_items):
        tables["stock"].append((i + 1, w, quantities[i], *(d[i] for d in dists), 0, 0, 0, data[i]))
    for d in range(1, scale.districts_per_warehouse + 1):
        tables["district"].append((d, w, _strings(rng, 1, 6, 10)[0], *_address(rng, 1)[0],
                                   _rate(rng, 1, 2000)[0], ytd_district, scale.orders_per_district + 1))
        _load_customers(tables, scale, rng, w, d)
        _load_orders(tables, scale, rng, w, d)


def _load_customers(tables: dict, scale: TpccScale, rng: np.random.Generator, w: int, d: int) -> None:
    n = scale.customers_per_district
    firsts = _strings(rng, n, 8, 16)
    addresses = _address(rng, n)
    phones = _strings(rng, n, 16, 16, _DIGITS)
    credits = ["BC" if bad else "GC" for bad in (rng.random(n) < 0.1).tolist()]
    discounts = _rate(rng, n, 5000)
    data = _strings(rng, n, 300, 500)
    history_data = _strings(rng, n, 12, 24)
    c_load = int(rng.integers(0, 255, endpoint=True))
    for i in range(n):
        c = i + 1
        number = i if c <= scale.last_names else nurand(rng, 255, 0, scale.last_names - 1, c_load)
        tables["customer"].append((
            c, d, w, firsts[i], "OE", last_name(number), *addresses[i], phones[i], LOAD_TIME,
            credits[i], Decimal("50000.00"), discounts[i], Decimal("-10.00"), Decimal("10.00"), 1, 0,
            data[i]))
        tables["history"].append((c, d, w, d, w, LOAD_TIME, Decimal("10.00"), history_data[i]))


def _load_orders(tables: dict, scale: TpccScale, rng: np.random.Generator, w: int, d: int) -> None:
    n = scale.orders_per_district
    first_new = n - scale.new_orders_per_district + 1
    customers = (rng.permutation(scale.customers_per_district) + 1).tolist()
    for o in range(1, n + 1):
        delivered = o < first_new
        ol_cnt = int(rng.integers(5, 15, endpoint=True))
        carrier = int(rng.integers(1, 10, endpoint=True)) if delivered else None
        tables["orders"].append((o, d, w, customers[o - 1], LOAD_TIME, carrier, ol_cnt, 1))
        if not delivered:
            tables["new_order"].append((o, d, w))
        items = rng.integers(1, scale.items, size=ol_cnt, endpoint=True).tolist()
        amounts = [Decimal("0.00")] * ol_cnt if delivered else _money(rng, ol_cnt, 1, 999_999)
        dist_info = _strings(rng, ol_cnt, 24, 24)
        for number in range(1, ol_cnt + 1):
            tables["order_line"].append((o, d, w, number, items[number - 1], w,
                                         LOAD_TIME if delivered else None, 5, amounts[number - 1],
                                         dist_info[number - 1]))


def setup(engine, scale: TpccScale, rng: np.random.Generator) -> list[tuple[int, bytes]]:
    """Create the schema in ``engine`` and return all pairs to load into storage."""
    pairs = engine.bootstrap(schema_sql())
    for table, rows in load_rows(scale, rng).items():
        pairs.extend(engine.load_rows(table, rows))
    return pairs


# --- inputs -----------------------------------------------------------------------------

@dataclass(frozen=True)
class TpccTransaction:
    kind: str
    inputs: dict


class TpccWorkload:
    """Draws transactions: the mix, then each kind's inputs (clause 2)."""

    def __init__(self, scale: TpccScale, rng: np.random.Generator):
        self.scale = scale
        # Clause 2.1.6.1: the run's NURand constants C, drawn once.
        self.c_last = int(rng.integers(0, 255, endpoint=True))
        self.c_id = int(rng.integers(0, 1023, endpoint=True))
        self.c_item = int(rng.integers(0, 8191, endpoint=True))
        self.cumulative = np.cumsum(MIX_PERCENT)

    def next_transaction(self, rng: np.random.Generator, w_id: int) -> TpccTransaction:
        """The next transaction of a terminal whose home warehouse is ``w_id``."""
        draw = int(rng.integers(0, 100))
        kind = KINDS[int(np.searchsorted(self.cumulative, draw, side="right"))]
        return TpccTransaction(kind, getattr(self, f"_{kind}")(rng, w_id))

    def _district(self, rng) -> int:
        return int(rng.integers(1, self.scale.districts_per_warehouse, endpoint=True))

    def _customer_id(self, rng) -> int:
        return nurand(rng, 1023, 1, self.scale.customers_per_district, self.c_id)

    def _customer_last(self, rng) -> str:
        return last_name(nurand(rng, 255, 0, self.scale.last_names - 1, self.c_last))

    def _remote_warehouse(self, rng, w_id: int) -> int:
        others = [w for w in range(1, self.scale.warehouses + 1) if w != w_id]
        return others[int(rng.integers(0, len(others)))] if others else w_id

    def _new_order(self, rng, w_id: int) -> dict:
        ol_cnt = int(rng.integers(5, 15, endpoint=True))
        rollback = int(rng.integers(1, 100, endpoint=True)) == 1
        lines = []
        for number in range(1, ol_cnt + 1):
            item = nurand(rng, 8191, 1, self.scale.items, self.c_item)
            if rollback and number == ol_cnt:
                item = self.scale.items + 1  # an unused item id (clause 2.4.1.4)
            remote = self.scale.warehouses > 1 and int(rng.integers(1, 100, endpoint=True)) == 1
            supply = self._remote_warehouse(rng, w_id) if remote else w_id
            lines.append((item, supply, int(rng.integers(1, 10, endpoint=True))))
        return {"w_id": w_id, "d_id": self._district(rng), "c_id": self._customer_id(rng),
                "lines": lines}

    def _payment(self, rng, w_id: int) -> dict:
        d_id = self._district(rng)
        home = self.scale.warehouses == 1 or int(rng.integers(1, 100, endpoint=True)) <= 85
        c_w_id, c_d_id = (w_id, d_id) if home else (self._remote_warehouse(rng, w_id), self._district(rng))
        by_name = int(rng.integers(1, 100, endpoint=True)) <= 60
        amount = Decimal(int(rng.integers(100, 500_000, endpoint=True))).scaleb(-2)
        customer = self._customer_last(rng) if by_name else self._customer_id(rng)
        return {"w_id": w_id, "d_id": d_id, "c_w_id": c_w_id, "c_d_id": c_d_id,
                "customer": customer, "amount": amount}

    def _order_status(self, rng, w_id: int) -> dict:
        by_name = int(rng.integers(1, 100, endpoint=True)) <= 60
        return {"w_id": w_id, "d_id": self._district(rng),
                "customer": self._customer_last(rng) if by_name else self._customer_id(rng)}

    def _delivery(self, rng, w_id: int) -> dict:
        return {"w_id": w_id, "carrier_id": int(rng.integers(1, 10, endpoint=True))}

    def _stock_level(self, rng, w_id: int) -> dict:
        return {"w_id": w_id, "d_id": self._district(rng),
                "threshold": int(rng.integers(10, 20, endpoint=True))}


# --- programs ---------------------------------------------------------------------------

@dataclass
class TpccOutcome:
    """How one execution of a transaction program ended."""

    kind: str
    committed: bool = False
    rolled_back: bool = False              # New-Order's intentional rollback
    error: SqlError | None = None          # the statement error that ended it, if any
    statements: list = field(default_factory=list)  # StatementResults, in order

    @property
    def retryable(self) -> bool:
        return self.error is not None and self.error.retryable


class _Failed(Exception):
    def __init__(self, error: SqlError):
        super().__init__(error.message)
        self.error = error


class _Runner:
    """Runs a program's statements, keeping results; an error stops the program."""

    def __init__(self, session, outcome: TpccOutcome):
        self.session = session
        self.outcome = outcome

    def q(self, sql: str, *params):
        result = yield from self.session.execute(sql, params)
        self.outcome.statements.append(result)
        if result.error is not None:
            raise _Failed(result.error)
        return result.rows

    def value(self, sql: str, *params):
        """The first column of the one row ``sql`` must return."""
        rows = yield from self.q(sql, *params)
        if not rows:
            raise _Failed(SqlError("P0002", "no row found"))
        return rows[0][0]


def run_transaction(session, txn: TpccTransaction, scale: TpccScale | None = None):
    """Generator: run one TPC-C transaction through ``session``; returns a TpccOutcome."""
    outcome = TpccOutcome(txn.kind)
    runner = _Runner(session, outcome)
    program = _PROGRAMS[txn.kind]
    try:
        yield from runner.q("BEGIN")
        finished = yield from program(runner, txn.inputs, scale or TpccScale())
        if finished:
            yield from runner.q("COMMIT")
            outcome.committed = True
        else:
            yield from runner.q("ROLLBACK")
            outcome.rolled_back = True
    except _Failed as failure:
        outcome.error = failure.error
        if session.in_transaction:
            result = yield from session.execute("ROLLBACK")
            outcome.statements.append(result)
    return outcome


def _customer_by_name(runner: _Runner, w_id: int, d_id: int, c_last: str):
    """Clause 2.5.2.2: the customer at position ceil(n/2) of those named, by c_first."""
    rows = yield from runner.q("SELECT c_id FROM customer WHERE c_w_id = $1 AND c_d_id = $2 "
                               "AND c_last = $3 ORDER BY c_first", w_id, d_id, c_last)
    if not rows:
        raise _Failed(SqlError("P0002", f"no customer named {c_last}"))
    return rows[(len(rows) + 1) // 2 - 1][0]


def _new_order(runner: _Runner, inputs: dict, scale: TpccScale):
    w_id, d_id, c_id, lines = inputs["w_id"], inputs["d_id"], inputs["c_id"], inputs["lines"]
    yield from runner.value("SELECT w_tax FROM warehouse WHERE w_id = $1", w_id)
    o_id = yield from runner.value("SELECT d_next_o_id, d_tax FROM district WHERE d_w_id = $1 AND d_id = $2",
                                   w_id, d_id)
    yield from runner.q("UPDATE district SET d_next_o_id = d_next_o_id + 1 WHERE d_w_id = $1 AND d_id = $2",
                        w_id, d_id)
    yield from runner.value("SELECT c_discount, c_last, c_credit FROM customer "
                            "WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3", w_id, d_id, c_id)
    all_local = int(all(supply == w_id for _, supply, _ in lines))
    yield from runner.q("INSERT INTO orders (o_id, o_d_id, o_w_id, o_c_id, o_entry_d, o_carrier_id, "
                        "o_ol_cnt, o_all_local) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP, NULL, $5, $6)",
                        o_id, d_id, w_id, c_id, len(lines), all_local)
    yield from runner.q("INSERT INTO new_order (no_o_id, no_d_id, no_w_id) VALUES ($1, $2, $3)",
                        o_id, d_id, w_id)
    dist_column = f"s_dist_{d_id:02d}"
    for number, (item, supply, quantity) in enumerate(lines, start=1):
        found = yield from runner.q("SELECT i_price, i_name, i_data FROM item WHERE i_id = $1", item)
        if not found:
            return False  # the 1% with an unused item: roll back (clause 2.4.2.3)
        price = found[0][0]
        stock = yield from runner.q(f"SELECT s_quantity, s_data, {dist_column} FROM stock "
                                    "WHERE s_w_id = $1 AND s_i_id = $2", supply, item)
        if not stock:
            raise _Failed(SqlError("P0002", f"no stock for item {item} in warehouse {supply}"))
        s_quantity, _, dist_info = stock[0]
        new_quantity = s_quantity - quantity if s_quantity >= quantity + 10 else s_quantity - quantity + 91
        yield from runner.q("UPDATE stock SET s_quantity = $3, s_ytd = s_ytd + $4, "
                            "s_order_cnt = s_order_cnt + 1, s_remote_cnt = s_remote_cnt + $5 "
                            "WHERE s_w_id = $1 AND s_i_id = $2",
                            supply, item, new_quantity, quantity, int(supply != w_id))
        yield from runner.q("INSERT INTO order_line (ol_o_id, ol_d_id, ol_w_id, ol_number, ol_i_id, "
                            "ol_supply_w_id, ol_delivery_d, ol_quantity, ol_amount, ol_dist_info) "
                            "VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, $9)",
                            o_id, d_id, w_id, number, item, supply, quantity, price * quantity, dist_info)
    return True


def _payment(runner: _Runner, inputs: dict, scale: TpccScale):
    w_id, d_id, amount = inputs["w_id"], inputs["d_id"], inputs["amount"]
    c_w_id, c_d_id, customer = inputs["c_w_id"], inputs["c_d_id"], inputs["customer"]
    yield from runner.q("UPDATE warehouse SET w_ytd = w_ytd + $2 WHERE w_id = $1", w_id, amount)
    w_name = yield from runner.value("SELECT w_name, w_street_1, w_street_2, w_city, w_state, w_zip "
                                     "FROM warehouse WHERE w_id = $1", w_id)
    yield from runner.q("UPDATE district SET d_ytd = d_ytd + $3 WHERE d_w_id = $1 AND d_id = $2",
                        w_id, d_id, amount)
    d_name = yield from runner.value("SELECT d_name, d_street_1, d_street_2, d_city, d_state, d_zip "
                                     "FROM district WHERE d_w_id = $1 AND d_id = $2", w_id, d_id)
    if isinstance(customer, str):
        c_id = yield from _customer_by_name(runner, c_w_id, c_d_id, customer)
    else:
        c_id = customer
    c_credit = yield from runner.value(
        "SELECT c_credit, c_first, c_middle, c_last, c_street_1, c_street_2, c_city, c_state, c_zip, "
        "c_phone, c_credit_lim, c_discount, c_balance, c_since FROM customer "
        "WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3", c_w_id, c_d_id, c_id)
    yield from runner.q("UPDATE customer SET c_balance = c_balance - $4, c_ytd_payment = c_ytd_payment + $4, "
                        "c_payment_cnt = c_payment_cnt + 1 WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3",
                        c_w_id, c_d_id, c_id, amount)
    if c_credit == "BC":  # clause 2.5.2.2: bad credit keeps a trail in c_data
        info = f"{c_id} {c_d_id} {c_w_id} {d_id} {w_id} {amount} "
        yield from runner.q("UPDATE customer SET c_data = substr($4 || c_data, 1, 500) "
                            "WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3", c_w_id, c_d_id, c_id, info)
    yield from runner.q("INSERT INTO history (h_c_id, h_c_d_id, h_c_w_id, h_d_id, h_w_id, h_date, h_amount, "
                        "h_data) VALUES ($1, $2, $3, $4, $5, CURRENT_TIMESTAMP, $6, $7)",
                        c_id, c_d_id, c_w_id, d_id, w_id, amount, f"{w_name}    {d_name}"[:24])
    return True


def _order_status(runner: _Runner, inputs: dict, scale: TpccScale):
    w_id, d_id, customer = inputs["w_id"], inputs["d_id"], inputs["customer"]
    if isinstance(customer, str):
        c_id = yield from _customer_by_name(runner, w_id, d_id, customer)
    else:
        c_id = customer
    yield from runner.q("SELECT c_balance, c_first, c_middle, c_last FROM customer "
                        "WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3", w_id, d_id, c_id)
    orders = yield from runner.q("SELECT o_id, o_carrier_id, o_entry_d FROM orders WHERE o_w_id = $1 "
                                 "AND o_d_id = $2 AND o_c_id = $3 ORDER BY o_id DESC LIMIT 1",
                                 w_id, d_id, c_id)
    if orders:
        yield from runner.q("SELECT ol_i_id, ol_supply_w_id, ol_quantity, ol_amount, ol_delivery_d "
                            "FROM order_line WHERE ol_w_id = $1 AND ol_d_id = $2 AND ol_o_id = $3",
                            w_id, d_id, orders[0][0])
    return True


def _delivery(runner: _Runner, inputs: dict, scale: TpccScale):
    w_id, carrier = inputs["w_id"], inputs["carrier_id"]
    for d_id in range(1, scale.districts_per_warehouse + 1):
        oldest = yield from runner.q("SELECT no_o_id FROM new_order WHERE no_w_id = $1 AND no_d_id = $2 "
                                     "ORDER BY no_o_id LIMIT 1", w_id, d_id)
        if not oldest:
            continue  # clause 2.7.4.2: a district with no outstanding order is skipped
        o_id = oldest[0][0]
        yield from runner.q("DELETE FROM new_order WHERE no_w_id = $1 AND no_d_id = $2 AND no_o_id = $3",
                            w_id, d_id, o_id)
        c_id = yield from runner.value("SELECT o_c_id FROM orders WHERE o_w_id = $1 AND o_d_id = $2 "
                                       "AND o_id = $3", w_id, d_id, o_id)
        yield from runner.q("UPDATE orders SET o_carrier_id = $4 WHERE o_w_id = $1 AND o_d_id = $2 "
                            "AND o_id = $3", w_id, d_id, o_id, carrier)
        yield from runner.q("UPDATE order_line SET ol_delivery_d = CURRENT_TIMESTAMP WHERE ol_w_id = $1 "
                            "AND ol_d_id = $2 AND ol_o_id = $3", w_id, d_id, o_id)
        total = yield from runner.value("SELECT sum(ol_amount) FROM order_line WHERE ol_w_id = $1 "
                                        "AND ol_d_id = $2 AND ol_o_id = $3", w_id, d_id, o_id)
        yield from runner.q("UPDATE customer SET c_balance = c_balance + $4, "
                            "c_delivery_cnt = c_delivery_cnt + 1 "
                            "WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3",
                            w_id, d_id, c_id, total or Decimal(0))
    return True


def _stock_level(runner: _Runner, inputs: dict, scale: TpccScale):
    w_id, d_id, threshold = inputs["w_id"], inputs["d_id"], inputs["threshold"]
    next_o_id = yield from runner.value("SELECT d_next_o_id FROM district WHERE d_w_id = $1 AND d_id = $2",
                                        w_id, d_id)
    yield from runner.q("SELECT count(DISTINCT s_i_id) FROM order_line JOIN stock "
                        "ON s_w_id = $1 AND s_i_id = ol_i_id WHERE ol_w_id = $1 AND ol_d_id = $2 "
                        "AND ol_o_id < $3 AND ol_o_id >= $4 AND s_quantity < $5",
                        w_id, d_id, next_o_id, next_o_id - 20, threshold)
    return True


_PROGRAMS = {"new_order": _new_order, "payment": _payment, "order_status": _order_status,
             "delivery": _delivery, "stock_level": _stock_level}


# --- consistency ------------------------------------------------------------------------

_CHECK_QUERIES = {
    "warehouse": "SELECT w_id, w_ytd FROM warehouse",
    "district_ytd": "SELECT d_w_id, sum(d_ytd) FROM district GROUP BY d_w_id",
    "district": "SELECT d_w_id, d_id, d_next_o_id FROM district",
    "orders": "SELECT o_w_id, o_d_id, max(o_id), sum(o_ol_cnt) FROM orders GROUP BY o_w_id, o_d_id",
    "new_order": "SELECT no_w_id, no_d_id, max(no_o_id), min(no_o_id), count(*) FROM new_order "
                 "GROUP BY no_w_id, no_d_id",
    "order_line": "SELECT ol_w_id, ol_d_id, count(*) FROM order_line GROUP BY ol_w_id, ol_d_id",
}


def check_consistency(session):
    """Generator: violations of consistency conditions 1-4 (clause 3.3.2), as strings,
    read in one snapshot (an empty list means all four hold)."""
    begin = yield from session.execute("BEGIN")
    if begin.error is not None:
        raise begin.error
    data = {}
    for name, sql in _CHECK_QUERIES.items():
        result = yield from session.execute(sql)
        if result.error is not None:
            yield from session.execute("ROLLBACK")
            raise result.error
        data[name] = result.rows
    yield from session.execute("COMMIT")
    return consistency_violations(data)


def consistency_violations(data: dict) -> list[str]:
    """Conditions 1-4 over the rows of ``_CHECK_QUERIES``."""
    violations = []
    district_ytd = dict(data["district_ytd"])
    for w, w_ytd in data["warehouse"]:  # condition 1
        if w_ytd != district_ytd.get(w):
            violations.append(f"1: warehouse {w}: w_ytd {w_ytd} != sum(d_ytd) {district_ytd.get(w)}")
    orders = {(w, d): (max_o, ol_cnt) for w, d, max_o, ol_cnt in data["orders"]}
    new_orders = {(w, d): (mx, mn, n) for w, d, mx, mn, n in data["new_order"]}
    lines = {(w, d): n for w, d, n in data["order_line"]}
    for w, d, next_o_id in data["district"]:
        max_o, ol_cnt = orders.get((w, d), (None, None))
        if max_o != next_o_id - 1:  # condition 2
            violations.append(f"2: district {w}/{d}: d_next_o_id - 1 = {next_o_id - 1} != max(o_id) {max_o}")
        if (w, d) in new_orders:
            mx, mn, n = new_orders[(w, d)]
            if mx != next_o_id - 1:
                violations.append(f"2: district {w}/{d}: max(no_o_id) {mx} != d_next_o_id - 1 {next_o_id - 1}")
            if mx - mn + 1 != n:  # condition 3
                violations.append(f"3: district {w}/{d}: max - min + 1 = {mx - mn + 1} != "
                                  f"count(new_order) {n}")
        if ol_cnt != lines.get((w, d)):  # condition 4
            violations.append(f"4: district {w}/{d}: sum(o_ol_cnt) {ol_cnt} != count(order_line) "
                              f"{lines.get((w, d))}")
    return violations
