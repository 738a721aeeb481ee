"""A terse SQL client over the harness, for the SQL engine tests."""

from __future__ import annotations

from dsqlbench.components.qp import Limits
from dsqlbench.sql.harness import Harness


class Client:
    """One session on a harness, with a terse ``q`` for statements."""

    def __init__(self, harness: Harness, name: str = "client", **limits):
        self.harness = harness
        self.session = harness.session(Limits(**limits) if limits else Limits(), name)

    def q(self, sql: str, *params):
        """Run a statement; return the result (errors are in ``result.error``)."""
        return self.harness.run(self.session, sql, params)

    def ok(self, sql: str, *params):
        """Run a statement that must succeed; return its rows."""
        result = self.q(sql, *params)
        assert result.error is None, f"{sql}: {result.error}"
        return result.rows

    def err(self, sql: str, *params):
        """Run a statement that must fail; return its SqlError."""
        result = self.q(sql, *params)
        assert result.error is not None, f"{sql} did not fail"
        return result.error
