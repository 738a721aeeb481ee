"""Transactions against the real conflict table: snapshots, own writes, atomicity,
conflicts (OC000, OC001), FOR UPDATE, DSQL's DDL rules and limits."""

from __future__ import annotations

from sqlclient import Client

from dsqlbench.sql.protocol import Begin, Commit, Rollback


def test_autocommit_statements_are_single_attempts(client):
    client.ok("CREATE TABLE t (a int PRIMARY KEY, b int)")
    generator = client.session.execute("INSERT INTO t VALUES (1, 1)")
    requests = [next(generator)]
    assert isinstance(requests[0], Begin)
    result = client.harness.drive(client.session, _replay(client, generator, requests[0]))
    assert result.attempt_ended == "committed" and result.t_commit_ns > result.t_start_ns
    assert not result.in_transaction


def _replay(client, generator, first):
    """Drive a generator whose first request was already taken."""
    reply = yield first
    try:
        request = generator.send(reply)
        while True:
            reply = yield request
            request = generator.send(reply)
    except StopIteration as stop:
        return stop.value


def test_snapshot_isolation_and_read_your_own_writes(harness, accounts):
    other = Client(harness, "other")
    accounts.ok("BEGIN")
    assert accounts.ok("SELECT balance FROM accounts WHERE id = 1")[0][0] == 10.5
    other.ok("UPDATE accounts SET balance = 999 WHERE id = 1")
    assert accounts.ok("SELECT balance FROM accounts WHERE id = 1")[0][0] == 10.5  # snapshot
    accounts.ok("UPDATE accounts SET balance = balance + 1 WHERE id = 2")
    accounts.ok("INSERT INTO accounts VALUES (42, 'mine', 1, 0)")
    accounts.ok("DELETE FROM accounts WHERE id = 3")
    assert accounts.ok("SELECT balance FROM accounts WHERE id = 2")[0][0] == 21.5
    assert accounts.ok("SELECT id FROM accounts WHERE id BETWEEN 1 AND 50 AND branch = 0 ORDER BY id") == \
        [(6,), (9,), (42,)]
    assert accounts.ok("SELECT count(*), sum(id) FROM accounts") == [(10, 94)]  # pushed aggregate + spool
    assert accounts.ok("SELECT id FROM accounts ORDER BY id LIMIT 3") == [(1,), (2,), (4,)]
    assert other.ok("SELECT count(*) FROM accounts WHERE id = 42") == [(0,)]  # not visible yet
    result = accounts.q("COMMIT")
    assert result.kind == "commit" and result.attempt_ended == "committed"
    assert other.ok("SELECT count(*) FROM accounts WHERE id = 42") == [(1,)]


def test_concurrent_updates_conflict_with_oc000(harness, accounts):
    other = Client(harness, "other")
    accounts.ok("BEGIN")
    other.ok("BEGIN")
    accounts.ok("UPDATE accounts SET balance = balance + 1 WHERE id = 1")
    other.ok("UPDATE accounts SET balance = balance + 2 WHERE id = 1")
    assert accounts.q("COMMIT").attempt_ended == "committed"
    result = other.q("COMMIT")
    assert result.error.sqlstate == "40001" and result.error.code == "OC000"
    assert result.error.message == "change conflicts with another transaction, please retry: (OC000)"
    assert result.error.retryable and result.attempt_ended == "aborted" and result.abort_reason == "OC000"
    assert not result.in_transaction
    assert accounts.ok("SELECT balance FROM accounts WHERE id = 1")[0][0] == 11.5


def test_for_update_prevents_write_skew(harness, client):
    """Two on-call doctors each go off call: without FOR UPDATE both commit (write skew,
    allowed by snapshot isolation); with it, the second commit conflicts."""
    other = Client(harness, "other")
    client.ok("CREATE TABLE doctors (id int PRIMARY KEY, on_call boolean)")
    for lock in ("", " FOR UPDATE"):
        client.ok("DELETE FROM doctors")
        client.ok("INSERT INTO doctors VALUES (1, true), (2, true)")
        for session, me in ((client, 1), (other, 2)):
            session.ok("BEGIN")
            assert len(session.ok(f"SELECT id FROM doctors WHERE on_call{lock}")) == 2
        client.ok("UPDATE doctors SET on_call = false WHERE id = 1")
        other.ok("UPDATE doctors SET on_call = false WHERE id = 2")
        assert client.q("COMMIT").error is None
        second = other.q("COMMIT")
        if lock:
            assert second.error.code == "OC000"
            assert client.ok("SELECT count(*) FROM doctors WHERE on_call") == [(1,)]
        else:
            assert second.error is None
            assert client.ok("SELECT count(*) FROM doctors WHERE on_call") == [(0,)]


def test_select_for_update_alone_joins_the_conflict_check(harness, accounts):
    other = Client(harness, "other")
    accounts.ok("BEGIN")
    accounts.ok("SELECT * FROM accounts WHERE id = 1 FOR UPDATE")
    other.ok("UPDATE accounts SET owner = 'x' WHERE id = 1")
    assert accounts.q("COMMIT").error.code == "OC000"
    assert accounts.err("SELECT count(*) FROM accounts FOR UPDATE").sqlstate == "0A000"


def test_read_only_transactions_never_abort(harness, accounts):
    other = Client(harness, "other")
    accounts.ok("BEGIN")
    accounts.ok("SELECT * FROM accounts")
    other.ok("UPDATE accounts SET balance = 0")
    assert accounts.q("COMMIT").attempt_ended == "committed"


def test_schema_change_during_a_transaction_is_oc001(harness, accounts):
    other = Client(harness, "other")
    accounts.ok("BEGIN")
    accounts.ok("UPDATE accounts SET balance = 1 WHERE id = 1")
    other.ok("CREATE TABLE unrelated (a int PRIMARY KEY)")
    result = accounts.q("COMMIT")
    assert result.error.sqlstate == "40001" and result.error.code == "OC001"
    assert result.error.message == "schema has been updated by another transaction, please retry: (OC001)"
    assert accounts.ok("SELECT balance FROM accounts WHERE id = 1")[0][0] == 10.5


def test_concurrent_ddl_conflicts(harness, client):
    other = Client(harness, "other")
    client.ok("BEGIN")
    other.ok("BEGIN")
    client.ok("CREATE TABLE t (a int PRIMARY KEY)")
    other.ok("CREATE TABLE t (a int PRIMARY KEY)")
    assert client.q("COMMIT").error is None
    assert other.q("COMMIT").error.code == "OC001"
    assert harness.counts.aborts == {"OC001": 1}


def test_ddl_and_dml_do_not_mix_and_one_ddl_per_transaction(accounts):
    accounts.ok("BEGIN")
    accounts.ok("INSERT INTO accounts VALUES (20, 'x', 1, 1)")
    error = accounts.err("CREATE TABLE t (a int PRIMARY KEY)")
    assert (error.sqlstate, error.message) == ("0A000", "ddl and dml are not supported in the same transaction")
    accounts.ok("ROLLBACK")
    accounts.ok("BEGIN")
    accounts.ok("CREATE TABLE t (a int PRIMARY KEY)")
    assert accounts.err("CREATE TABLE u (a int PRIMARY KEY)").message == \
        "multiple ddl statements not supported in a transaction"
    accounts.ok("ROLLBACK")
    accounts.ok("BEGIN")
    accounts.ok("CREATE TABLE t (a int PRIMARY KEY)")
    assert accounts.err("INSERT INTO t VALUES (1)").message == \
        "ddl and dml are not supported in the same transaction"
    accounts.ok("ROLLBACK")
    assert accounts.err("SELECT * FROM t").sqlstate == "42P01"  # rolled back DDL left nothing


def test_failed_statement_leaves_no_trace(harness, accounts):
    # autocommit: a multi-row INSERT whose third row is a duplicate inserts nothing
    assert accounts.err("INSERT INTO accounts VALUES (30, 'a', 1, 1), (31, 'b', 1, 1), (30, 'c', 1, 1)")
    assert accounts.ok("SELECT count(*) FROM accounts WHERE id >= 30") == [(0,)]
    # an UPDATE failing on its fourth row changes no row
    assert accounts.err("UPDATE accounts SET balance = balance / (id - 4)").sqlstate == "22012"
    assert accounts.ok("SELECT sum(balance) FROM accounts")[0][0] == 555
    # inside a transaction: the failed statement's writes are undone, earlier ones kept
    accounts.ok("BEGIN")
    accounts.ok("UPDATE accounts SET owner = 'kept' WHERE id = 1")
    spool_before = dict(accounts.session.txn.spool)
    assert accounts.err("INSERT INTO accounts VALUES (40, 'a', 1, 1), (1, 'dup', 1, 1)").sqlstate == "23505"
    assert accounts.session.txn.spool == spool_before
    # ... and the transaction is aborted until ROLLBACK (COMMIT rolls back too)
    error = accounts.err("SELECT 1")
    assert error.sqlstate == "25P02"
    result = accounts.q("COMMIT")
    assert (result.kind, result.error, result.attempt_ended, result.abort_reason) == \
        ("rollback", None, "aborted", "DUPLICATE_KEY")
    assert accounts.ok("SELECT owner FROM accounts WHERE id = 1") == [("owner1",)]


def test_syntax_error_inside_a_transaction_aborts_it(accounts):
    accounts.ok("BEGIN")
    assert accounts.err("SELEC 1").sqlstate == "42601"
    assert accounts.err("SELECT 1").sqlstate == "25P02"
    assert accounts.q("ROLLBACK").attempt_ended == "aborted"
    assert accounts.ok("SELECT 1") == [(1,)]


def test_row_limit(harness, client):
    client.ok("CREATE TABLE src (a int PRIMARY KEY)")
    harness.load(harness.engine.load_rows("src", [(i,) for i in range(3001)]))
    client.ok("CREATE TABLE dst (a int PRIMARY KEY)")
    result = client.q("INSERT INTO dst SELECT a FROM src")
    assert result.error.sqlstate == "54000" and result.error.message == "transaction row limit exceeded"
    assert result.attempt_ended == "aborted" and result.abort_reason == "LIMIT_ROWS"
    assert client.q("INSERT INTO dst SELECT a FROM src WHERE a < 3000").rowcount == 3000
    small = Client(harness, "small", max_modified_rows=2)
    small.ok("BEGIN")
    small.ok("UPDATE dst SET a = a WHERE a < 2")
    assert small.err("UPDATE dst SET a = a WHERE a = 2").code == "LIMIT_ROWS"


def test_size_limit(client):
    client.ok("CREATE TABLE blobs (a int PRIMARY KEY, b bytea)")
    client.ok("BEGIN")
    for i in range(9):
        client.ok("INSERT INTO blobs VALUES ($1, $2)", i, b"x" * (1 << 20))
    error = client.err("INSERT INTO blobs VALUES (99, $1)", b"x" * (2 << 20))
    assert error.sqlstate == "54000" and error.message == "transaction size limit 10mb exceeded"
    assert error.code == "LIMIT_BYTES" and error.detail.startswith("Current transaction size")
    assert client.q("ROLLBACK").abort_reason == "LIMIT_BYTES"


def test_every_attempt_ends_with_one_commit_or_rollback(harness, accounts):
    """Attempt accounting for the runtime: requests of several statement outcomes."""
    cases = [
        (["SELECT 1"], Commit), (["INSERT INTO accounts VALUES (1, 'x', 1, 1)"], Rollback),
        (["BEGIN", "SELECT 1", "ROLLBACK"], Rollback), (["BEGIN", "SELECT 1", "COMMIT"], Commit),
    ]
    for statements, last in cases:
        requests = []
        for sql in statements:
            requests += _requests(harness, accounts.session, sql)
        kinds = [type(r) for r in requests if isinstance(r, (Begin, Commit, Rollback))]
        assert kinds == [Begin, last], statements


def _requests(harness, session, sql):
    seen = []
    pending = harness.start(session, sql)
    while not pending.done:
        seen.append(pending.request)
        pending.step()
    return seen


def test_interleaving_single_requests(harness, accounts):
    """Hermitage-style: two autocommit updates interleaved request by request."""
    other = Client(harness, "other")
    first = harness.start(accounts.session, "UPDATE accounts SET balance = 1 WHERE id = 1")
    second = harness.start(other.session, "UPDATE accounts SET balance = 2 WHERE id = 1")
    first.step()   # Begin
    second.step()  # Begin
    first.finish()
    result = second.finish()
    assert result.error.code == "OC000"


def test_runtime_refusals_map_to_dsql_errors(client):
    """The runtime enforces the 300 s limit (and may refuse a commit for other reasons):
    the session turns the reply's reason into DSQL's error."""
    from dsqlbench.sql.protocol import BeginReply, CommitReply
    session = client.session
    cases = {"LIMIT_DURATION": ("54000", "transaction age limit of 300s exceeded"),
             "OC001": ("40001", "schema has been updated by another transaction, please retry: (OC001)"),
             "PROMISE_EXPIRED": ("40001", "change conflicts with another transaction, please retry: (OC000)")}
    for reason, (sqlstate, message) in cases.items():
        generator = session.execute("SELECT 1")
        assert isinstance(next(generator), Begin)
        request = generator.send(BeginReply(10, 0))
        while not isinstance(request, Commit):
            request = generator.send(None)
        try:
            generator.send(CommitReply(False, reason=reason))
        except StopIteration as stop:
            result = stop.value
        assert (result.error.sqlstate, result.error.message, result.error.code) == (sqlstate, message, reason)
        assert result.attempt_ended == "aborted" and result.abort_reason == reason


def test_close_rolls_back_an_open_transaction(harness, accounts):
    accounts.ok("BEGIN")
    accounts.ok("UPDATE accounts SET balance = 0 WHERE id = 1")
    result = harness.drive(accounts.session, accounts.session.close())
    assert result.attempt_ended == "rolled_back" and not accounts.session.in_transaction
    assert harness.drive(accounts.session, accounts.session.close()) is None
    assert accounts.ok("SELECT balance FROM accounts WHERE id = 1")[0][0] == 10.5
    assert [accounts.q(sql).tag for sql in ("SELECT * FROM accounts", "INSERT INTO accounts VALUES (77, 'a')",
                                            "UPDATE accounts SET branch = 1", "BEGIN", "COMMIT")] == \
        ["SELECT 10", "INSERT 0 1", "UPDATE 11", "BEGIN", "COMMIT"]
