"""A worker's claim in one round trip: on PostgreSQL, `longshore_claim_v1` locks the worker's row, reads the job
with its attempt, the project's cap and the slots the worker holds, and claims the attempt when nothing stands
in the way. In a transaction that was five statements (BEGIN, the lock, the read, the claim, COMMIT), each a
round trip with SQLAlchemy's and psycopg2's work around it in the worker.

A function, not one statement: in READ COMMITTED each statement of a function takes a snapshot of its own, so
the read after the lock sees every claim of this worker committed before the lock was granted, as the
transaction's read did (one statement's CTEs would share a snapshot taken before the lock). It claims only a
job that is at the attempt, unfinished, unowned, within the worker's slots, of no code and under no cap of
running jobs; for anything else it claims nothing, and the caller decides from what it read or takes the
transaction (a code's gate and a project's cap lock their rows and count in it). It returns no row at all in a
session that is not READ COMMITTED (a server whose default isolation is stricter): the caller then takes the
transaction, which sets its level itself.

`job` is the jobs table's row type: a column added or dropped later is followed; after a column's type changed
later, each connection drops its prepared call when it first meets the change and prepares it afresh, as it
does every prepared read of `jobs` (`store.prepared`). The
function is an interface between code versions (a rolling upgrade runs the previous one on the same schema):
a change is a new function of the next version's name, never a replacement of this one.

A rolling upgrade from schema 9: code of schema 9 claims in its transaction, which takes the same lock first.
The embedded SQLite has no functions: it always takes the transaction.

Revision ID: 0010
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COMPATIBLE_FROM = 9

CLAIM_FUNCTION = """
CREATE OR REPLACE FUNCTION longshore_claim_v1(
    p_job_id text, p_number integer, p_worker text, p_engine text, p_host text, p_slots integer,
    p_default_max_running integer, p_now double precision, p_final text[])
RETURNS TABLE (claimed boolean, attempt_worker text, max_running_jobs integer, holding bigint, job jobs)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    found_row record;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RETURN;  -- the read after the lock needs a snapshot of its own: the caller's transaction decides
    END IF;
    claimed := false;
    -- The worker's own row first: its claims are serialised, so the count of its slots below holds.
    UPDATE workers SET pid = workers.pid WHERE workers.name = p_worker;
    SELECT j AS job_row, a.worker AS owner, p.max_running_jobs AS project_cap,
           (SELECT count(*) FROM attempts h WHERE h.worker = p_worker AND h.released_at IS NULL) AS held
      INTO found_row
      FROM jobs j JOIN attempts a ON a.job_id = j.id AND a.number = p_number
                  JOIN projects p ON p.id = j.project_id
     WHERE j.id = p_job_id;
    IF NOT FOUND THEN
        RETURN NEXT;
        RETURN;
    END IF;
    job := found_row.job_row;
    attempt_worker := found_row.owner;
    max_running_jobs := found_row.project_cap;
    holding := found_row.held;
    IF job.attempt = p_number AND NOT job.status = ANY (p_final) AND attempt_worker IS NULL
       AND holding < p_slots AND job.code IS NULL AND coalesce(max_running_jobs, p_default_max_running) = 0 THEN
        UPDATE attempts SET worker = p_worker, engine = p_engine, host = p_host, claimed_at = p_now,
                            progress_at = p_now
         WHERE attempts.job_id = p_job_id AND attempts.number = p_number AND attempts.worker IS NULL;
        claimed := FOUND;
    END IF;
    RETURN NEXT;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CLAIM_FUNCTION)
    op.execute(f"UPDATE longshore_schema SET version = 10, compatible_from = {COMPATIBLE_FROM}")


def downgrade() -> None:
    raise NotImplementedError("Longshore's migrations go forward only: restore a backup to go back")
