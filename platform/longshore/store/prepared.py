"""Server-side prepared statements on psycopg2, which has none of its own.

A job's store work is about thirty short statements (single-row reads and fenced writes by primary key), and
in a burst PostgreSQL spent half of its time in them planning (pg_stat_statements): each text was parsed,
analysed and planned afresh at every execution. A statement a connection has run `PREPARE_AFTER` times is
prepared on it (`PREPARE`) and from then on sent as `EXECUTE name(values)`, whose values psycopg2 quotes as
it quotes any parameters: its plan is made once per connection (`bench/store_ops.py`: PostgreSQL's CPU per
job 0.74×). PostgreSQL still plans afresh where a plan for the values at hand is much better than a generic one.

- Only statements with named parameters run one at a time (not `executemany`), texts of at most
  `MAX_PREPARED_TEXT` characters, at most `MAX_PREPARED` per connection (the least recently used goes).
- A statement PostgreSQL cannot prepare (a parameter whose type it cannot infer) is remembered and runs as
  before. Inside a transaction the `PREPARE` runs under a savepoint, so its failure aborts nothing.
- `PREPARE` and `DEALLOCATE` are not transactional: a rollback keeps what was prepared. A connection that is
  replaced (the store restarted) starts with none.
- Behind a pooler that does not keep a session per client (pgbouncer in transaction mode), a statement
  prepared on one server connection is unknown on the next: set `LONGSHORE_DATABASE_PREPARE=off` there.
"""

from __future__ import annotations

import collections
import hashlib
import re
from typing import Any

import psycopg2

#: Runs of a statement text on one connection before it is prepared there: once-only texts never are.
PREPARE_AFTER = 2
#: Prepared statements kept per connection: more than the store's hot statements, far below its memory.
MAX_PREPARED = 200
#: Longer texts (a list page's filters, a batch's many values) are left as they are.
MAX_PREPARED_TEXT = 4000
#: Texts counted per connection before the count starts afresh (texts built with a varying number of values
#: would otherwise grow it for ever).
MAX_COUNTED = 1000

_PARAMETER = re.compile(r"%\((\w+)\)s")
_UNPREPARABLE: set[str] = set()  # texts PostgreSQL refused to prepare (in any connection): a few of the store's


class _Statements:
    """One connection's statements: how often each text ran, and the prepared ones (least recent first)."""

    def __init__(self) -> None:
        self.runs: collections.Counter[str] = collections.Counter()
        self.prepared: collections.OrderedDict[str, tuple[str, str]] = collections.OrderedDict()


def rewrite(conn: Any, cursor: Any, statement: str, parameters: Any, _context: Any,
            executemany: bool) -> tuple[str, Any]:
    """SQLAlchemy's `before_cursor_execute` (with `retval=True`): the statement as it is, or as `EXECUTE` of
    its prepared form on this connection."""
    if executemany or not isinstance(parameters, dict) or len(statement) > MAX_PREPARED_TEXT \
            or statement in _UNPREPARABLE:
        return statement, parameters
    statements = conn.info.get("prepared")
    if statements is None:
        statements = conn.info["prepared"] = _Statements()
    known = statements.prepared.get(statement)
    if known is None:
        if len(statements.runs) >= MAX_COUNTED:
            statements.runs.clear()
        statements.runs[statement] += 1
        if statements.runs[statement] < PREPARE_AFTER:
            return statement, parameters
        del statements.runs[statement]
        known = _prepare(conn, cursor, statements, statement)
        if known is None:
            return statement, parameters
    else:
        statements.prepared.move_to_end(statement)
    return known[1], parameters


def _prepare(conn: Any, cursor: Any, statements: _Statements, statement: str) -> tuple[str, str] | None:
    """PREPARE `statement` on this connection: (its name, the EXECUTE that runs it), or None if it cannot be."""
    numbers: dict[str, int] = {}
    for name in _PARAMETER.findall(statement):
        numbers.setdefault(name, len(numbers) + 1)
    # psycopg2 sends a text without parameters as it is: a `%%` (a literal %) becomes the % it stands for.
    body = _PARAMETER.sub(lambda found: f"${numbers[found.group(1)]}", statement).replace("%%", "%")
    name = "ls_" + hashlib.blake2b(statement.encode(), digest_size=8).hexdigest()
    arguments = ", ".join(f"%({each})s" for each in numbers)
    execute = f"EXECUTE {name}({arguments})" if numbers else f"EXECUTE {name}"
    in_transaction = not conn.connection.dbapi_connection.autocommit
    if in_transaction:
        cursor.execute("SAVEPOINT longshore_prepare")
    try:
        cursor.execute(f"PREPARE {name} AS {body}")
    except (psycopg2.OperationalError, psycopg2.InterfaceError):
        raise  # the store went away: the statement's own failure, as it would have met it
    except psycopg2.Error:  # it cannot be prepared (a parameter of no type PostgreSQL can infer)
        if in_transaction:
            cursor.execute("ROLLBACK TO SAVEPOINT longshore_prepare")
        _UNPREPARABLE.add(statement)
        return None
    if in_transaction:
        cursor.execute("RELEASE SAVEPOINT longshore_prepare")
    statements.prepared[statement] = (name, execute)
    if len(statements.prepared) > MAX_PREPARED:
        _, (oldest, _) = statements.prepared.popitem(last=False)
        cursor.execute(f"DEALLOCATE {oldest}")
    return name, execute
