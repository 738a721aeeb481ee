"""The SQL front end of the lab's query processor: PostgreSQL's grammar, DSQL's rules.

What a driver (the simulator's runtime, the harness, a shell) uses:

    engine = SqlEngine()                        # one per cluster: catalog, caches, row ids
    pairs = engine.bootstrap(schema_sql)        # schema at catalog version 0 -> catalog rows
    pairs += engine.load_rows("t", rows)        # encoded rows + index entries, for bulk load
    session = engine.session(Limits())          # one per client connection
    result = yield from session.execute(sql, params)   # yields protocol Requests

The engine is sans-I/O: ``execute`` yields ``protocol`` requests (Begin, PointRead,
Scan, Commit, Rollback) and is sent their replies; ``harness.Harness`` serves them
against the real storage and adjudicator cores with a logical clock.

Modules: ``parser`` (pglast -> ``ir``), ``catalog`` and ``ddl`` (schema, versioned by
commit time), ``codec`` (order-preserving keys, rows), ``types``, ``expr`` (compiled
expressions), ``planner`` (access paths, pushdown), ``executor``, ``explain``,
``session`` (transactions, limits, results), ``engine``, ``harness``, ``protocol``.
"""

__all__ = ["SqlEngine", "SqlError", "SqlSession", "StatementResult"]

_EXPORTS = {"SqlEngine": "engine", "SqlError": "errors", "SqlSession": "session",
            "StatementResult": "session"}


def __getattr__(name: str):
    # Lazy, so importing dsqlbench.sql.protocol (as the runtime's components do) never
    # drags in the parser and planner, and no import cycle can form through here.
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dsqlbench.sql' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(f"dsqlbench.sql.{module}"), name)
