"""Projects and their tokens in the store (only tokens' digests are kept)."""

from __future__ import annotations

import hmac
import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from longshore.domain.projects import new_project_id, new_token, token_digest
from longshore.domain.quotas import Quotas
from longshore.errors import InvalidJob, ProjectNotFound
from longshore.store.database import is_postgres, read
from longshore.store.notify import FinishListener
from longshore.store.schema import projects, tokens

#: Announced by each change of a token or a project's quotas: the API processes' caches of callers drop theirs.
CALLERS_CHANNEL = "longshore_callers"
#: Callers a process keeps (beyond it, the cache starts afresh), and for how long at most: a change whose
#: notification never came (a revocation by hand, or by an older release) holds within that.
MAX_CACHED_CALLERS = 10_000
CALLER_MAX_AGE_SECONDS = 5.0


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    created_at: float
    quotas: Quotas = Quotas()  #: its own limits (None: the installation's)


@dataclass(frozen=True)
class Caller:
    """Who a valid token acts for, and how fast that project's requests may come (None: the installation's)."""

    project_id: str
    requests_per_second: float | None


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: never the token itself."""

    id: str
    project_id: str
    name: str | None
    created_at: float
    revoked_at: float | None


class ProjectStore:
    """Projects, and the tokens that act for them."""

    def __init__(self, engine: Engine, listener: FinishListener | None = None):
        self.engine = engine
        #: token digest -> (the epoch of CALLERS_CHANNEL it was read under, when, who it acts for): every API
        #: request authenticates, and a token's read was a fifth of a status read's work. Good only while that
        #: epoch holds (`store.notify`: a revocation or a quota changed anywhere moves it), and for
        #: CALLER_MAX_AGE_SECONDS at most.
        self._callers: dict[str, tuple[int, float, Caller]] = {}
        self._listener = listener if listener is not None and is_postgres(engine) else None

    def create(self, name: str, quotas: Quotas = Quotas()) -> tuple[Project, str]:
        """A new project and its first token (returned once, never stored)."""
        project = Project(id=new_project_id(), name=name, created_at=time.time(), quotas=quotas)
        try:
            with self.engine.begin() as conn:
                conn.execute(projects.insert().values(id=project.id, name=name, created_at=project.created_at,
                                                      **vars(quotas)))
                token = self._add_token(conn, project.id, "first")
        except sa.exc.IntegrityError:
            raise InvalidJob(f"name: a project named {name!r} exists already") from None
        return project, token

    def get(self, project_ref: str) -> Project:
        """A project by its id or its name."""
        with read(self.engine) as conn:  # an id first: a name never shadows another project's id
            row = (conn.execute(sa.select(projects).where(projects.c.id == project_ref)).first()
                   or conn.execute(sa.select(projects).where(projects.c.name == project_ref)).first())
        if row is None:
            raise ProjectNotFound(f"project: no project {project_ref!r}")
        return _project(row)

    def list(self) -> list[Project]:
        with read(self.engine) as conn:
            rows = conn.execute(sa.select(projects).order_by(projects.c.created_at)).all()
        return [_project(row) for row in rows]

    def set_quotas(self, project_id: str, changes: dict[str, int | float | None]) -> Project:
        """Change some of a project's quotas (a value None: back to the installation's)."""
        unknown = set(changes) - set(vars(Quotas()))
        if unknown:
            raise InvalidJob(f"{sorted(unknown)[0]}: not a quota")
        with self.engine.begin() as conn:
            if changes:
                conn.execute(projects.update().where(projects.c.id == project_id).values(**changes))
                self._announce(conn)
            row = conn.execute(sa.select(projects).where(projects.c.id == project_id)).first()
        self._moved()
        if row is None:
            raise ProjectNotFound(f"project: no project {project_id!r}")
        return _project(row)

    def create_token(self, project_id: str, name: str | None = None) -> str:
        with self.engine.begin() as conn:
            return self._add_token(conn, project_id, name)

    def tokens(self, project_id: str) -> list[TokenInfo]:
        with read(self.engine) as conn:
            rows = conn.execute(sa.select(tokens).where(tokens.c.project_id == project_id)
                                .order_by(tokens.c.created_at)).all()
        return [TokenInfo(row.id, row.project_id, row.name, row.created_at, row.revoked_at) for row in rows]

    def revoke_token(self, token_id: str) -> None:
        with self.engine.begin() as conn:
            changed = conn.execute(tokens.update().where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
                                   .values(revoked_at=time.time())).rowcount
            self._announce(conn)
        self._moved()
        if not changed:
            raise InvalidJob(f"token: no active token {token_id!r}")

    def authenticate(self, token: str) -> Caller | None:
        """Who a token acts for; None for a wrong, unknown or revoked token. From this process's cache while
        nothing changed a token or a quota since it was read (on PostgreSQL, once listening)."""
        digest, now = token_digest(token), time.monotonic()
        epoch = self._listener.epoch(CALLERS_CHANNEL) if self._listener else None
        cached = self._callers.get(digest) if epoch is not None else None
        if cached is not None and cached[0] == epoch and now - cached[1] < CALLER_MAX_AGE_SECONDS:
            return cached[2]
        with read(self.engine) as conn:  # an epoch taken before the read: a change during it moves the epoch
            row = conn.execute(_AUTHENTICATE, {"digest": digest}).first()
        if row is None or not hmac.compare_digest(row.digest, digest):
            return None  # never cached: a token made later works at once
        caller = Caller(row.project_id, row.requests_per_second)
        if epoch is not None:
            if len(self._callers) >= MAX_CACHED_CALLERS:
                self._callers.clear()
            self._callers[digest] = (epoch, now, caller)
        return caller

    def _announce(self, conn: sa.Connection) -> None:
        """Inside a transaction that changed a token or a quota: every process's cached callers go at its commit."""
        if self._listener is not None:
            conn.execute(_ANNOUNCE)

    def _moved(self) -> None:
        """After such a change: this process's own cached callers go at once (its notification comes later)."""
        if self._listener is not None:
            self._listener.moved(CALLERS_CHANNEL)

    @staticmethod
    def _add_token(conn: sa.Connection, project_id: str, name: str | None) -> str:
        token = new_token()
        conn.execute(tokens.insert().values(id=uuid.uuid4().hex[:24], project_id=project_id,
                                            digest=token_digest(token), name=name, created_at=time.time()))
        return token


def _project(row: Any) -> Project:
    return Project(row.id, row.name, row.created_at, Quotas(row.max_queued_jobs, row.max_running_jobs,
                                                            row.requests_per_second))


#: A live token's project and rate (built once: every API request asks it).
_AUTHENTICATE = (sa.select(tokens.c.project_id, tokens.c.digest, projects.c.requests_per_second)
                 .join(projects, projects.c.id == tokens.c.project_id)
                 .where(tokens.c.digest == sa.bindparam("digest"), tokens.c.revoked_at.is_(None)))
_ANNOUNCE = sa.select(sa.func.pg_notify(CALLERS_CHANNEL, ""))
