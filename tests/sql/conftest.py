"""Shared helpers for the SQL engine tests: a harness, a session and a small schema."""

from __future__ import annotations

import pytest

from dsqlbench.sql.harness import Harness
from sqlclient import Client


@pytest.fixture
def harness() -> Harness:
    return Harness()


@pytest.fixture
def client(harness) -> Client:
    return Client(harness)


@pytest.fixture
def accounts(harness, client) -> Client:
    """A client with table accounts(id pk, owner, balance numeric, branch) of 10 rows."""
    client.ok("CREATE TABLE accounts (id int PRIMARY KEY, owner varchar(20) NOT NULL, "
              "balance numeric(12,2) NOT NULL DEFAULT 0, branch int)")
    values = ", ".join(f"({i}, 'owner{i}', {i * 10}.50, {i % 3})" for i in range(1, 11))
    client.ok(f"INSERT INTO accounts VALUES {values}")
    return client
