"""Server-side prepared statements on psycopg2, which has none of its own.

A job's store work is about thirty short statements (single-row reads and fenced writes by primary key), and
in a burst PostgreSQL spent half of its time in them planning (pg_stat_statements): each text was parsed,
analysed and planned afresh at every execution. A statement a connection has run `PREPARE_AFTER` times is
prepared on it (`PREPARE`) and from then on sent as `EXECUTE name(values)`, whose values psycopg2 quotes as
it quotes any parameters: its plan is made once per connection (`bench/store_ops.py`: PostgreSQL's CPU per
job 0.74×). PostgreSQL still plans afresh where a plan for the values at hand is much better than a generic one.

- Only reads and writes (SELECT, INSERT, UPDATE, DELETE) run one at a time (not a batch of rows, not on a
  server-side cursor), of at most `MAX_PREPARED_TEXT` characters, never in a failed transaction (its rollback's
  statements), at most `MAX_PREPARED` per connection (the least recently used goes).
- A prepared parameter takes the type of what it is compared with or assigned to; a literal keeps its own. A
  whole number past 32 bits is a bigint literal but an error bound to an integer parameter: such values go
  as before, as literals. (A fraction compared with an integer column would be rounded: no caller does.)
- A statement PostgreSQL cannot prepare (a parameter whose type it cannot infer) is remembered and runs as
  before. Inside a transaction the `PREPARE` runs under a savepoint, so its failure aborts nothing.
- `PREPARE` and `DEALLOCATE` are not transactional: a rollback keeps what was prepared. A connection that is
  replaced (the store restarted) starts with none.
- Behind a pooler that does not keep a session per client (pgbouncer in transaction mode) a statement
  prepared on one server connection is unknown on the next: set `LONGSHORE_DATABASE_PREPARE=off` there. A
  process that meets it anyway (SQLSTATE 26000 or 42P05) prepares nothing more, after that one statement
  failed (psycopg2 calls 26000 an OperationalError: it is retried as an outage is).
- A migration that changes a column's type (a varchar widened) leaves a connection's prepared statements that
  read it out of date: their EXECUTE fails (SQLSTATE 0A000, "cached plan must not change result type"). The
  connection's prepared statements are then dropped (`DEALLOCATE ALL`) and prepared afresh. In autocommit the
  statement runs again at once as text; in a transaction (which that failure aborted) it fails as an outage
  does (`PreparedOutOfDate`, not counted as the store away), and its caller retries it. A statement whose first
  EXECUTE fails so, just after its PREPARE, meets a real error (0A000 is also "feature not supported"): it is
  never prepared again, and the error is its own.
- Errors show the statement's text; PostgreSQL's statement log shows a prepared one as `EXECUTE ls_…(values)`
  with its text (bench/statements.py reads it so).
"""

from __future__ import annotations

import collections
import hashlib
import logging
import re
from typing import Any

import psycopg2
from psycopg2.extensions import TRANSACTION_STATUS_INERROR

log = logging.getLogger(__name__)

#: Runs of a statement text on one connection before it is prepared there: once-only texts never are.
PREPARE_AFTER = 2
#: Prepared statements kept per connection: more than the store's hot statements, far below its memory.
MAX_PREPARED = 200
#: Longer texts (a list page's filters, a batch's many values) are left as they are.
MAX_PREPARED_TEXT = 4000
#: SQLSTATEs that say a session's prepared statements are not its own (a pooler hands its statements to other
#: server connections): no such prepared statement (26000), or one of that name already there (42P05).
SESSION_NOT_KEPT = frozenset({"26000", "42P05"})
#: SQLSTATEs of a statement whose table, column or function is not there yet (a store not migrated): not remembered.
SCHEMA_NOT_THERE = frozenset({"42P01", "42703", "42883"})
#: SQLSTATE of an EXECUTE whose prepared form no longer fits the schema: a column's type changed under it, and
#: with it the statement's result. (A parameter's type is fixed at PREPARE: no migration changes that.)
OUT_OF_DATE = "0A000"
INT32 = (-(1 << 31), (1 << 31) - 1)
#: Texts counted per connection before the count starts afresh (texts built with a varying number of values
#: would otherwise grow it for ever).
MAX_COUNTED = 1000

#: What PREPARE takes (not SAVEPOINT, SET, DDL …): the store's reads and writes.
_PREPARABLE = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|WITH|VALUES)\b", re.IGNORECASE)
_PARAMETER = re.compile(r"%\((\w+)\)s")
_UNPREPARABLE: set[str] = set()  # texts PostgreSQL refused to prepare (in any connection): a few of the store's


class _Switch:
    on = True  #: False once the store was seen not to keep a connection's session (`on_error`)


_switch = _Switch()


class _Statements:
    """One connection's statements: how often each text ran, and the prepared ones (least recent first)."""

    def __init__(self) -> None:
        self.runs: collections.Counter[str] = collections.Counter()
        self.prepared: collections.OrderedDict[str, tuple[str, str]] = collections.OrderedDict()
        self.out_of_date = False  #: to be dropped before its next statement outside a failed transaction
        self.fresh: set[str] = set()  #: prepared and not yet run once

    def forget(self, cursor: Any) -> None:
        """Drop every statement prepared on this connection: they are prepared afresh as they run again."""
        cursor.execute("DEALLOCATE ALL")
        self.prepared.clear()
        self.fresh.clear()
        self.out_of_date = False


class PreparedOutOfDate(psycopg2.OperationalError):
    """A transaction's prepared statement no longer fit the schema (a migration changed a column's type): the
    transaction is to be run again, as after an outage (SQLAlchemy wraps it as an OperationalError), though the
    store was never away (`StoreHealth` does not count it)."""


def execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool | None:
    """SQLAlchemy's `do_execute` (a dialect event): run the statement as `EXECUTE` of its prepared form on this
    connection (True), or leave it to SQLAlchemy to run as it is (None). A dialect event, not a connection one
    (`before_cursor_execute`): any connection event makes SQLAlchemy dispatch all of them at every step of
    every statement, a fifth of a statement's CPU here (`bench/store_ops.py`); and errors name the text."""
    if not _switch.on or not isinstance(parameters, dict) or _wide_integer(parameters) or context.executemany \
            or context.execution_options.get("stream_results"):
        return None  # a batch of rows (insertmanyvalues), or a server-side cursor (its DECLARE takes no EXECUTE)
    conn = context.root_connection
    try:
        statements = conn.info.get("prepared")
    except NotImplementedError:
        return None  # the dialect's checks on a new connection, before the pool holds it: no `info` yet
    if statements is None:
        statements = conn.info["prepared"] = _Statements()
    if statements.out_of_date:
        if conn.connection.dbapi_connection.info.transaction_status == TRANSACTION_STATUS_INERROR:
            return None  # the failed transaction's own statements, before its rollback
        statements.forget(cursor)
    known = statements.prepared.get(statement)
    if known is not None:  # the common case first: it passed the checks below when it was prepared
        statements.prepared.move_to_end(statement)
    else:
        if len(statement) > MAX_PREPARED_TEXT or not _PREPARABLE.match(statement) or statement in _UNPREPARABLE:
            return None
        if len(statements.runs) >= MAX_COUNTED:
            statements.runs.clear()
        statements.runs[statement] += 1
        if statements.runs[statement] < PREPARE_AFTER:
            return None
        del statements.runs[statement]
        dbapi = conn.connection.dbapi_connection
        if dbapi.info.transaction_status == TRANSACTION_STATUS_INERROR:
            return None  # its transaction failed: the statement is a rollback's or fails anyway
        known = _prepare(cursor, statements, statement, in_transaction=not dbapi.autocommit)
        if known is None:
            return None
    try:
        cursor.execute(known[1], parameters)
    except psycopg2.Error as exc:
        if exc.pgcode != OUT_OF_DATE:
            statements.fresh.discard(statement)  # it ran: a later 0A000 is a migration's
            raise
        if statement in statements.fresh:  # its plan was made just now: no migration made it out of date
            statements.fresh.discard(statement)
            del statements.prepared[statement]  # left allocated on the server until the connection closes
            _UNPREPARABLE.add(statement)
            raise
        return _out_of_date(cursor, statements, conn.connection.dbapi_connection, exc)
    statements.fresh.discard(statement)
    return True


def _out_of_date(cursor: Any, statements: _Statements, dbapi: Any, exc: psycopg2.Error) -> None:
    """A prepared statement no longer fits the schema (a migration changed a column's type): drop this
    connection's prepared statements. In autocommit, None: SQLAlchemy runs the statement as text, now. In a
    transaction (aborted by the failure) they are dropped before its next statement, and the failure is an
    OperationalError: its caller retries the transaction as it retries an outage."""
    why = f"SQLSTATE {exc.pgcode}: {exc.diag.message_primary}"
    log.warning("a prepared statement no longer fits the store's schema (%s): this connection's are prepared "
                "afresh", why)
    if dbapi.autocommit:
        statements.forget(cursor)
        return None
    statements.out_of_date = True
    raise PreparedOutOfDate(f"a prepared statement no longer fits the store's schema ({why}): the transaction is "
                            "to be run again") from exc


def _wide_integer(parameters: dict) -> bool:
    """A whole number outside 32 bits: sent as a literal it is a bigint, compared as such with an integer column
    (a revision 99999999999 is not found); bound to a prepared statement's integer parameter it is an error."""
    return any(type(value) is int and not INT32[0] <= value <= INT32[1] for value in parameters.values())


def _prepare(cursor: Any, statements: _Statements, statement: str, *, in_transaction: bool) -> tuple[str, str] | None:
    """PREPARE `statement` on this connection: (its name, the EXECUTE that runs it), or None if it cannot be."""
    numbers: dict[str, int] = {}
    for name in _PARAMETER.findall(statement):
        numbers.setdefault(name, len(numbers) + 1)
    # psycopg2 sends a text without parameters as it is: a `%%` (a literal %) becomes the % it stands for.
    body = _PARAMETER.sub(lambda found: f"${numbers[found.group(1)]}", statement).replace("%%", "%")
    name = "ls_" + hashlib.blake2b(statement.encode(), digest_size=8).hexdigest()
    arguments = ", ".join(f"%({each})s" for each in numbers)
    execute = f"EXECUTE {name}({arguments})" if numbers else f"EXECUTE {name}"
    if in_transaction:
        cursor.execute("SAVEPOINT longshore_prepare")
    try:
        cursor.execute(f"PREPARE {name} AS {body}")
    except (psycopg2.OperationalError, psycopg2.InterfaceError):
        raise  # the store went away: the statement's own failure, as it would have met it
    except psycopg2.Error as exc:
        if in_transaction:
            cursor.execute("ROLLBACK TO SAVEPOINT longshore_prepare")
            cursor.execute("RELEASE SAVEPOINT longshore_prepare")
        if exc.pgcode in SESSION_NOT_KEPT:
            _turn_off(exc.pgcode)
        elif exc.pgcode not in SCHEMA_NOT_THERE:  # not yet migrated: try again later
            _UNPREPARABLE.add(statement)  # a parameter of no type PostgreSQL can infer, a statement of no plan
        return None
    if in_transaction:
        cursor.execute("RELEASE SAVEPOINT longshore_prepare")
    statements.prepared[statement] = (name, execute)
    statements.fresh.add(statement)
    if len(statements.prepared) > MAX_PREPARED:
        oldest_text, (oldest, _) = statements.prepared.popitem(last=False)
        statements.fresh.discard(oldest_text)
        cursor.execute(f"DEALLOCATE {oldest}")
    return name, execute


def on_error(context: Any) -> None:
    """SQLAlchemy's `handle_error`: a statement met a session whose prepared statements are not its own (a
    pooler in transaction mode): this process prepares nothing more. That statement has failed (its caller
    retries it as any store failure); LONGSHORE_DATABASE_PREPARE=off avoids even that."""
    code = getattr(context.original_exception, "pgcode", None)
    if code in SESSION_NOT_KEPT and _switch.on:
        _turn_off(code)


def _turn_off(code: str) -> None:
    _switch.on = False
    log.warning("the store's sessions do not keep prepared statements (SQLSTATE %s: a pooler in transaction "
                "mode?): this process prepares none from now on; set LONGSHORE_DATABASE_PREPARE=off", code)
