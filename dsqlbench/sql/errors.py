"""SQL errors as a client sees them: SQLSTATE, DSQL code, message, position.

Role: every failure a statement can meet inside the SQL engine is one ``SqlError``
(bad syntax, an unsupported feature, a constraint violation, a DSQL limit, a commit
conflict). The session catches it and returns it as a value in the statement result,
so a failed statement never crashes the simulation; a bug (any other exception) still
does.

Messages follow PostgreSQL's wording, and DSQL's own wording where DSQL differs (limits,
conflicts, DDL rules), so results read like a DSQL client's log.

Invariants:
- ``sqlstate`` is a five-character SQLSTATE; ``code`` is a DSQL/lab abort code (OC000,
  OC001, LIMIT_ROWS, ...) when one applies, else "";
- ``position`` is PostgreSQL's: a 1-based character offset into the statement text,
  or None.
"""

from __future__ import annotations

from dsqlbench.components.messages import AbortReason

# SQLSTATEs the engine raises (PostgreSQL's names in comments).
SYNTAX_ERROR = "42601"             # syntax_error
FEATURE_NOT_SUPPORTED = "0A000"    # feature_not_supported
UNDEFINED_TABLE = "42P01"          # undefined_table
UNDEFINED_COLUMN = "42703"         # undefined_column
UNDEFINED_FUNCTION = "42883"       # undefined_function
DUPLICATE_TABLE = "42P07"          # duplicate_table (also relations: indexes)
DUPLICATE_COLUMN = "42701"         # duplicate_column
AMBIGUOUS_COLUMN = "42702"         # ambiguous_column
GROUPING_ERROR = "42803"           # grouping_error
DATATYPE_MISMATCH = "42804"        # datatype_mismatch
INVALID_TABLE_DEFINITION = "42P16"  # invalid_table_definition
UNIQUE_VIOLATION = "23505"         # unique_violation
NOT_NULL_VIOLATION = "23502"       # not_null_violation
STRING_TOO_LONG = "22001"          # string_data_right_truncation
OUT_OF_RANGE = "22003"             # numeric_value_out_of_range
DIVISION_BY_ZERO = "22012"         # division_by_zero
INVALID_TEXT = "22P02"             # invalid_text_representation
INVALID_DATETIME = "22007"         # invalid_datetime_format
LIMIT_EXCEEDED = "54000"           # program_limit_exceeded (DSQL's transaction limits)
SERIALIZATION_FAILURE = "40001"    # serialization_failure (DSQL's OC000 / OC001)
IN_FAILED_TRANSACTION = "25P02"    # in_failed_sql_transaction
NO_ACTIVE_TRANSACTION = "25P01"    # no_active_sql_transaction (a warning in PostgreSQL)
ACTIVE_TRANSACTION = "25001"       # active_sql_transaction (a warning in PostgreSQL)
UNDEFINED_PARAMETER = "42P02"      # undefined_parameter
CARDINALITY_VIOLATION = "21000"    # cardinality_violation


class SqlError(Exception):
    """One failed statement, as the client would see it."""

    def __init__(self, sqlstate: str, message: str, *, code: str = "",
                 position: int | None = None, detail: str | None = None):
        assert len(sqlstate) == 5, sqlstate
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message
        self.code = code
        self.position = position
        self.detail = detail

    @property
    def retryable(self) -> bool:
        """Whether a client should retry the whole transaction (DSQL's 40001)."""
        return self.sqlstate == SERIALIZATION_FAILURE

    def __str__(self) -> str:
        text = f"ERROR: {self.message} (SQLSTATE {self.sqlstate})"
        if self.position is not None:
            text += f" at character {self.position}"
        if self.detail:
            text += f"\nDETAIL: {self.detail}"
        return text

    def __repr__(self) -> str:
        return f"SqlError({self.sqlstate!r}, {self.message!r}, code={self.code!r})"


def unsupported(feature: str, position: int | None = None) -> SqlError:
    """0A000 naming the feature: ``unsupported: window functions``."""
    return SqlError(FEATURE_NOT_SUPPORTED, f"unsupported: {feature}", position=position)


# --- DSQL's own errors ------------------------------------------------------------------

def conflict_error(reason: str) -> SqlError:
    """A commit the adjudicator refused, or a limit the runtime enforced at commit."""
    if reason == AbortReason.SCHEMA_CHANGED:
        return SqlError(SERIALIZATION_FAILURE,
                        "schema has been updated by another transaction, please retry: (OC001)",
                        code=reason)
    if reason in (AbortReason.LIMIT_DURATION, AbortReason.TOO_OLD):
        return SqlError(LIMIT_EXCEEDED, "transaction age limit of 300s exceeded", code=reason)
    if reason == AbortReason.LIMIT_ROWS:
        return row_limit_error()
    if reason == AbortReason.LIMIT_BYTES:
        return size_limit_error(0)
    # OC000, PROMISE_EXPIRED and anything else the runtime reports: a retryable conflict.
    return SqlError(SERIALIZATION_FAILURE,
                    "change conflicts with another transaction, please retry: (OC000)",
                    code=reason or AbortReason.CONFLICT)


def row_limit_error() -> SqlError:
    return SqlError(LIMIT_EXCEEDED, "transaction row limit exceeded", code=AbortReason.LIMIT_ROWS)


def size_limit_error(size_bytes: int) -> SqlError:
    size_mb = size_bytes / (1024 * 1024)
    return SqlError(LIMIT_EXCEEDED, "transaction size limit 10mb exceeded",
                    code=AbortReason.LIMIT_BYTES,
                    detail=f"Current transaction size {size_mb:.0f}mb 10mb")


def ddl_dml_mix_error() -> SqlError:
    return SqlError(FEATURE_NOT_SUPPORTED, "ddl and dml are not supported in the same transaction")


def multiple_ddl_error() -> SqlError:
    return SqlError(FEATURE_NOT_SUPPORTED, "multiple ddl statements not supported in a transaction")


def failed_transaction_error() -> SqlError:
    return SqlError(IN_FAILED_TRANSACTION,
                    "current transaction is aborted, commands ignored until end of transaction block")


def duplicate_key_error(constraint: str, columns: list[str], values: tuple) -> SqlError:
    shown = ", ".join("null" if v is None else str(v) for v in values)
    return SqlError(UNIQUE_VIOLATION, f'duplicate key value violates unique constraint "{constraint}"',
                    code=AbortReason.DUPLICATE_KEY,
                    detail=f"Key ({', '.join(columns)})=({shown}) already exists.")


def char_position(sql: str, offset: int | None) -> int | None:
    """PostgreSQL's 1-based character position from the parser's 0-based offset (pglast
    reports character offsets, already converted from libpg_query's bytes)."""
    if offset is None or offset < 0:
        return None
    return min(offset, len(sql)) + 1
