"""Pushdown: filters, projections, aggregates and limits run at storage, so rows that do
not match never reach the QP; EXPLAIN shows where each condition runs."""

from __future__ import annotations

from dsqlbench.sql.protocol import Scan


def plan(client, sql: str, *params) -> str:
    return "\n".join(row[0] for row in client.ok(f"EXPLAIN {sql}", *params))


def scans_of(harness, session, sql: str, *params) -> tuple[list, object]:
    """The Scan requests a statement sends, and its result."""
    scans = []
    pending = harness.start(session, sql, params)
    while not pending.done:
        if isinstance(pending.request, Scan):
            scans.append(pending.request)
        pending.step()
    return scans, pending.result


def test_filtered_rows_are_examined_but_never_returned(accounts):
    result = accounts.q("SELECT id FROM accounts WHERE balance > 80")
    assert result.rows == [(8,), (9,), (10,)]
    assert (result.rows_examined, result.rows_returned) == (10, 3)
    everything = accounts.q("SELECT id FROM accounts")
    assert (everything.rows_examined, everything.rows_returned) == (10, 10)


def test_storage_closures_really_filter_and_project(harness, accounts):
    scans, result = scans_of(harness, accounts.session, "SELECT owner FROM accounts WHERE branch = $1", 2)
    assert len(scans) == 1 and scans[0].row_filter is not None and scans[0].projection is not None
    assert result.rows == [("owner2",), ("owner5",), ("owner8",)]
    whole = accounts.q("SELECT * FROM accounts WHERE branch = 2")
    assert result.bytes_returned < whole.bytes_returned  # projection moved fewer bytes


def test_qp_filters_run_after_transfer(accounts):
    result = accounts.q("SELECT id FROM accounts WHERE owner LIKE '%1%'")
    assert result.rows == [(1,), (10,)]
    assert result.rows_returned == 10  # LIKE is not pushed: every row crossed
    text = plan(accounts, "SELECT id FROM accounts WHERE owner LIKE '%1%' AND balance > 5")
    assert "  Filter: (owner ~~ '%1%')" in text
    assert "Filters: (balance > 5)" in text


def test_aggregates_fold_at_storage(accounts):
    result = accounts.q("SELECT branch, count(*), sum(balance) FROM accounts GROUP BY branch ORDER BY branch")
    assert [r[:2] for r in result.rows] == [(0, 3), (1, 4), (2, 3)]
    assert (result.rows_examined, result.rows_returned) == (10, 1)  # one partial-aggregate reply
    text = plan(accounts, "SELECT branch, count(*) FROM accounts GROUP BY branch")
    assert "Aggregates: count(*)" in text and "Group Key: branch" in text
    distinct = accounts.q("SELECT count(DISTINCT branch) FROM accounts")
    assert distinct.rows == [(3,)] and distinct.rows_returned == 10  # DISTINCT folds in the QP


def test_point_lookup_and_key_ranges_read_only_their_keys(accounts):
    point = accounts.q("SELECT owner FROM accounts WHERE id = 7")
    assert point.rows == [("owner7",)] and point.rows_examined == 1
    ranged = accounts.q("SELECT owner FROM accounts WHERE id > 3 AND id <= 5")
    assert ranged.rows_examined == 2
    text = plan(accounts, "SELECT owner FROM accounts WHERE id = $1", 1)
    assert text.splitlines()[:2] == ["Index Only Scan using accounts_pkey on accounts",
                                     "  Index Cond: (id = $1)"]
    assert "->  Storage Scan on accounts_pkey" in text and "Projections: owner" in text


def test_limit_goes_to_storage_when_nothing_can_drop_rows(accounts):
    result = accounts.q("SELECT id FROM accounts WHERE balance > 20 ORDER BY id LIMIT 2")
    assert result.rows == [(2,), (3,)] and result.rows_returned == 2
    descending = accounts.q("SELECT id FROM accounts ORDER BY id DESC LIMIT 3")
    assert descending.rows == [(10,), (9,), (8,)] and descending.rows_examined == 3
    assert "Index Only Scan Backward" in plan(accounts, "SELECT id FROM accounts ORDER BY id DESC LIMIT 3")
    unordered = accounts.q("SELECT id FROM accounts ORDER BY balance DESC LIMIT 1")
    assert unordered.rows == [(10,)] and unordered.rows_returned == 10  # sort in the QP needs all


def test_full_scan_and_index_scan_plans(accounts):
    text = plan(accounts, "SELECT id FROM accounts WHERE balance > 5")
    assert text.splitlines()[0] == "Full Scan (btree-table) on accounts"
    accounts.ok("CREATE INDEX acc_owner ON accounts (owner)")
    text = plan(accounts, "SELECT balance FROM accounts WHERE owner = 'owner3' AND branch = 0")
    lines = text.splitlines()
    assert lines[0] == "Index Scan using acc_owner on accounts"
    assert "  ->  Storage Lookup on accounts" in lines
    assert any("Filters: (branch = 0)" in line for line in lines)
    result = accounts.q("SELECT balance FROM accounts WHERE owner = 'owner3' AND branch = 0")
    assert len(result.rows) == 1


def test_join_plan_uses_lookups(accounts):
    accounts.ok("CREATE TABLE b (bid int PRIMARY KEY, name text)")
    accounts.ok("INSERT INTO b VALUES (0, 'z'), (1, 'o'), (2, 't')")
    text = plan(accounts, "SELECT a.id, b.name FROM accounts a JOIN b ON b.bid = a.branch WHERE a.id < 3")
    assert text.splitlines()[0] == "Nested Loop"
    assert "Index Cond: (b.bid = a.branch)" in text
    result = accounts.q("SELECT a.id, b.name FROM accounts a JOIN b ON b.bid = a.branch WHERE a.id < 3")
    assert result.rows == [(1, "o"), (2, "t")]
    assert result.storage_requests == 3  # one scan, then one lookup per outer row


def test_explain_analyze_reports_what_moved(accounts):
    rows = accounts.ok("EXPLAIN ANALYZE SELECT id FROM accounts WHERE balance > 80")
    assert rows[-1][0] == ("Actual: rows=3 storage_requests=1 rows_examined=10 rows_returned=3 "
                           f"bytes_returned={accounts.q('SELECT id FROM accounts WHERE balance > 80').bytes_returned}")


def test_dml_plans(accounts):
    assert plan(accounts, "UPDATE accounts SET balance = 0 WHERE id = 1").splitlines()[:2] == \
        ["Update on accounts", "  ->  Index Scan using accounts_pkey on accounts"]
    assert plan(accounts, "DELETE FROM accounts WHERE branch = 1").splitlines()[:2] == \
        ["Delete on accounts", "  ->  Full Scan (btree-table) on accounts"]
    assert plan(accounts, "INSERT INTO accounts VALUES (99, 'x', 1, 1)").splitlines() == \
        ["Insert on accounts", "  ->  Values Scan  (rows=1)"]
