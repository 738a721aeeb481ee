"""``dsqlbench serve``: a PostgreSQL wire-protocol (v3) endpoint in front of the simulated
cluster, so real clients (psql, pgbench, psycopg, asyncpg) drive the simulated DSQL.

One module per component:
- ``messages``: the protocol codec (framing, decoding, encoding), sans-I/O;
- ``pgtypes``: type OIDs and the text/binary formats; ``describe``: result columns and
  parameter types of a statement;
- ``shims``: SET/SHOW/RESET, ``version()``, the few ``pg_catalog`` look-ups clients send;
- ``compat``: ``--compat pgbench`` (what ``pgbench -i`` needs that DSQL rejects);
- ``copyin``: COPY FROM STDIN;
- ``auth``: SCRAM-SHA-256 for ``--password``;
- ``backend``: the cluster, statements as SimPy processes, recording and injected conflicts;
- ``timing``: simulated time under asyncio (``--time fast|real``);
- ``connection``: one client's session; ``server``: listening, admission, shutdown, results.
"""
