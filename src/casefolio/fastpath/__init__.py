"""The fast path: the read-optimised machinery, behind one seam.

The domain writes plain SQLAlchemy; each piece here makes a measured path cheaper without
the domain knowing, and each can break on a FastAPI, SQLAlchemy or driver upgrade, so each
is in one place and can be ruled out:

- `reads.ReadModel`: which reader the reads clients make most (a document, a page of
  documents) run on. Fast, the `statements.StatementReader`: SQLite statements compiled once
  (`prepared`) and run on the event loop, PostgreSQL reads of one statement sharing a round
  trip (`batching`). Plain, an ordinary SQLAlchemy read session per read. The setting
  `CASEFOLIO_FAST_READS=false` switches it off (say, to rule it out while chasing a bug, or
  after an upgrade); tests/fastpath/test_fast_path.py checks both answer every read alike.
- `answers`: a page of documents' whole answer kept while the database is unchanged,
  under a version read from the database itself (SQLite's `data_version`, PostgreSQL's
  snapshot), so that any commit, by any process, makes it unreachable (`ReadModel.remembered`;
  with fast reads off every page is read).
- `routes.DirectRoute`: the document read, the document lists, the two upload routes and
  the folder create resolved by casefolio instead of FastAPI's per-request dependency
  resolution (with fast reads off, ordinary APIRoutes).
- `sqlite_inline`: the SQLite driver behind SQLAlchemy's aiosqlite dialect, statements on
  the event loop and commits made durable by a shared log flush (`walsync`).
- `inflight`: a request alone in the process runs its blob's and the log's fsyncs on the
  event loop, without the thread hand-offs (on with either read model: durability is the
  same either way, only where the fsync runs differs).
- `gc_tuning`: start-up objects frozen out of the garbage collector's generations.

How much each one saves is measured by the benchmarks (bench/README.md), not written here.
This package imports nothing at import time, so db/ can use the driver without a cycle.
"""
