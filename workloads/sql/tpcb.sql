-- pgbench's TPC-B tables, as `pgbench -i` creates them (PostgreSQL 16 pgbench.c,
-- initCreateTables), with the primary keys pgbench adds afterwards (`-i` step "p")
-- declared inline: DSQL organises a table by its primary key from the start.
-- pgbench_history has no primary key; DSQL gives it a hidden unique key.
CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
CREATE TABLE pgbench_tellers (tid int not null primary key, bid int, tbalance int, filler char(84));
CREATE TABLE pgbench_accounts (aid int not null primary key, bid int, abalance int, filler char(84));
CREATE TABLE pgbench_branches (bid int not null primary key, bbalance int, filler char(88));
