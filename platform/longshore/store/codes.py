"""Codes in the store: revisions made by uploads, the gates (pause, max concurrency) read by claims. A code's
name is unique within its project; every method takes the project (the default one unless given)."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from longshore.domain.codes import Code, CodeRevision
from longshore.errors import CodeNotFound
from longshore.domain.projects import DEFAULT_PROJECT
from longshore.store.database import read
from longshore.store.schema import code_archives, code_revisions, codes


class CodeStore:
    """Uploads, lookups, listing, pause/resume and deletion of codes."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def upload(self, name: str, built: dict[str, Any], *, project: str = DEFAULT_PROJECT) -> int:
        """Store a new revision of `name` (made, or made again after a delete); return its number."""
        now = time.time()
        key = _key(project, name)
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(codes.c.latest).where(*key).with_for_update()).first()
            revision = (row.latest if row else 0) + 1
            values = dict(latest=revision, stack=built["stack"], max_concurrency=built["max_concurrency"],
                          updated_at=now, deleted_at=None)
            if row is None:
                conn.execute(codes.insert().values(project_id=project, name=name, created_at=now, paused=False,
                                                   **values))
            else:
                conn.execute(codes.update().where(*key).values(**values))
            archive = built.get("archive")
            if archive is not None:
                self._keep_archive(conn, *archive, now=now)
            conn.execute(code_revisions.insert().values(
                project_id=project, name=name, revision=revision, stack=built["stack"], defaults=built["defaults"],
                config=built["config"], max_concurrency=built["max_concurrency"], created_at=now,
                archive_sha256=archive[0].sha256 if archive else None, entry=built.get("entry")))
        return revision

    @staticmethod
    def _keep_archive(conn: Any, info: Any, data: bytes, *, now: float) -> None:
        """Store an archive once: the same zip uploaded again (or by another code) is the same row."""
        exists = conn.execute(sa.select(code_archives.c.sha256).where(code_archives.c.sha256 == info.sha256)).first()
        if exists is None:
            try:
                with conn.begin_nested():  # two uploads of one zip at once: the second finds the first's row
                    conn.execute(code_archives.insert().values(
                        sha256=info.sha256, data=data, size_bytes=info.size_bytes,
                        unpacked_bytes=info.unpacked_bytes, files=info.files, created_at=now))
            except sa.exc.IntegrityError:
                pass

    def archive(self, sha256: str) -> bytes:
        """An archive's zip by its digest (CodeNotFound if the store has none)."""
        with read(self.engine) as conn:
            data = conn.execute(sa.select(code_archives.c.data).where(code_archives.c.sha256 == sha256)).scalar()
        if data is None:
            raise CodeNotFound(f"code: no archive {sha256[:12]} in the store")
        return bytes(data)

    def archive_of(self, name: str, number: int, *, project: str = DEFAULT_PROJECT) -> tuple[str, str] | None:
        """(digest, entry) of an archive revision, deleted code or not (its queued jobs still run); None
        for an image code's."""
        with read(self.engine) as conn:
            row = conn.execute(sa.select(code_revisions.c.archive_sha256, code_revisions.c.entry).where(
                *_revision_key(project, name), code_revisions.c.revision == number)).first()
        return (row.archive_sha256, row.entry) if row is not None and row.archive_sha256 else None

    def revision(self, name: str, number: int | None = None, *, project: str = DEFAULT_PROJECT) -> CodeRevision:
        """Revision `number` of a code not deleted (its latest when None); CodeNotFound naming what is not."""
        with read(self.engine) as conn:
            code = conn.execute(sa.select(codes).where(*_key(project, name))).mappings().first()
            if code is None or code["deleted_at"] is not None:
                raise CodeNotFound(f"code: no code named {name!r}")
            wanted = code["latest"] if number is None else number
            row = conn.execute(sa.select(code_revisions).where(
                *_revision_key(project, name), code_revisions.c.revision == wanted)).mappings().first()
        if row is None:
            raise CodeNotFound(f"code: code {name!r} has no revision {wanted} (its latest is {code['latest']})")
        return _revision(row)

    def revisions(self, name: str, *, project: str = DEFAULT_PROJECT) -> list[CodeRevision]:
        """Every revision of a code not deleted, oldest first."""
        self.revision(name, project=project)  # CodeNotFound if there is no such code
        with read(self.engine) as conn:
            rows = conn.execute(sa.select(code_revisions).where(*_revision_key(project, name))
                                .order_by(code_revisions.c.revision)).mappings().all()
        return [_revision(row) for row in rows]

    def list(self, *, project: str = DEFAULT_PROJECT) -> list[Code]:
        """The project's codes not deleted, by name."""
        with read(self.engine) as conn:
            rows = conn.execute(sa.select(codes).where(codes.c.project_id == project, codes.c.deleted_at.is_(None))
                                .order_by(codes.c.name)).mappings().all()
        return [_code(row) for row in rows]

    def code(self, name: str, *, project: str = DEFAULT_PROJECT) -> Code:
        """A code not deleted, with its gates; CodeNotFound if there is none."""
        with read(self.engine) as conn:
            row = conn.execute(sa.select(codes).where(*_key(project, name), codes.c.deleted_at.is_(None))
                               ).mappings().first()
        if row is None:
            raise CodeNotFound(f"code: no code named {name!r}")
        return _code(row)

    def set_paused(self, name: str, paused: bool, *, project: str = DEFAULT_PROJECT) -> None:
        """Pause (its jobs wait in the store) or resume a code; CodeNotFound if there is none."""
        self._update(project, name, paused=paused)

    def delete(self, name: str, *, project: str = DEFAULT_PROJECT) -> None:
        """No new jobs for the code; its revisions stay for the jobs that ran them."""
        self._update(project, name, deleted_at=time.time(), paused=False)

    def _update(self, project: str, name: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            changed = conn.execute(codes.update().where(*_key(project, name), codes.c.deleted_at.is_(None))
                                   .values(updated_at=time.time(), **values)).rowcount
        if not changed:
            raise CodeNotFound(f"code: no code named {name!r}")


def _key(project: str, name: str) -> tuple:
    return codes.c.project_id == project, codes.c.name == name


def _revision_key(project: str, name: str) -> tuple:
    return code_revisions.c.project_id == project, code_revisions.c.name == name


def _code(row: Any) -> Code:
    return Code(name=row["name"], latest=row["latest"], stack=row["stack"], paused=row["paused"],
                max_concurrency=row["max_concurrency"], created_at=row["created_at"], updated_at=row["updated_at"])


def _revision(row: Any) -> CodeRevision:
    return CodeRevision(name=row["name"], revision=row["revision"], stack=row["stack"], defaults=row["defaults"],
                        config=row["config"], max_concurrency=row["max_concurrency"], created_at=row["created_at"],
                        archive_sha256=row["archive_sha256"], entry=row["entry"])
