"""/v1 codes, for the token's project: upload a revision (an image code, or a zip sent as base64 with its
entry file), list, read, revisions, pause, resume, delete. The strict model checks each field's type; the
core's validator (`service.submit.upload_code`, as `longshore.upload_code`) checks the rest, naming the field
as it was sent. Another project's code answers 404 exactly as one never made."""

from __future__ import annotations

import base64
import binascii
import contextlib
import math
from typing import Any, Iterator

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from longshore.api.auth import ApiError
from longshore.api.native import Project
from longshore.domain.codes import known_name
from longshore.errors import InvalidJob
from longshore.service import submit as submitting
from longshore.service.runtime import Runtime
from longshore.service.views import code_revision_view, code_view

router = APIRouter(prefix="/v1")
#: The core's names for fields this API sends under another name.
SENT_AS = {"code": "name", "archive": "archive_base64"}


class CodeUpload(BaseModel):
    """A new revision of code `name` (made if new): `longshore.upload_code`'s fields. An image code gives a
    `command` (and may give an `image` its stack allows); an archive code gives `archive_base64` and `entry`."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    name: str = Field(description="1 to 100 letters, digits, '_', '.' or '-', starting with a letter or digit")
    stack: str = Field(description="the stack its jobs run on")
    image: str | None = None
    command: list[str] | None = None
    env: dict[str, str] | None = None
    config: Any = Field(default=None, description="JSON given to each job as CONFIG_FILE")
    timeout: float | None = None
    memory: str | int | None = None
    cpus: float | None = None
    disk: str | int | None = None
    priority: int | None = None
    retries: int | None = None
    retry_delay: float | None = None
    max_concurrency: int | None = Field(default=None, description="at most this many of its jobs run at once")
    webhook: str | None = None
    archive_base64: str | None = Field(default=None, description="a zip, base64 (RFC 4648, padded)")
    entry: str | None = Field(default=None, description="the archive's file its stack runs, e.g. hello.py")


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime


@router.post("/codes", status_code=201)
def upload_code(request: Request, upload: CodeUpload, project: str = Project) -> dict:
    """Store a new revision of the code; answers its name and the revision's number."""
    rt = _rt(request)
    fields = upload.model_dump(exclude={"name", "archive_base64"}, exclude_none=True)
    if upload.archive_base64 is not None:
        fields["archive"] = _zip(upload.archive_base64, rt.settings.archive_limits.zip_bytes)
    with _as_sent():
        revision = submitting.upload_code(rt, upload.name, fields, project=project)
    return {"name": upload.name, "revision": revision}


@router.get("/codes")
def list_codes(request: Request, project: str = Project) -> dict:
    """The project's codes by name: latest revision, stack, whether paused, max concurrency."""
    return {"codes": [code_view(code) for code in _rt(request).store.codes.list(project=project)]}


@router.get("/codes/{name}")
def get_code(request: Request, name: str, project: str = Project) -> dict:
    """The code, and its latest revision: the defaults its jobs get."""
    codes = _rt(request).store.codes
    code = codes.code(known_name(name), project=project)
    return {**code_view(code), "latest_revision": code_revision_view(codes.revision(name, project=project))}


@router.get("/codes/{name}/revisions")
def code_revisions(request: Request, name: str, project: str = Project) -> dict:
    """Every revision of the code, oldest first (a job pins one as NAME@REVISION)."""
    found = _rt(request).store.codes.revisions(known_name(name), project=project)
    return {"revisions": [code_revision_view(revision) for revision in found]}


@router.delete("/codes/{name}")
def delete_code(request: Request, name: str, project: str = Project) -> dict:
    """No new jobs of the code; its queued jobs still run, its revisions stay for the jobs that ran them."""
    _rt(request).store.codes.delete(known_name(name), project=project)
    return {"name": name, "deleted": True}


@router.post("/codes/{name}/pause")
def pause_code(request: Request, name: str, project: str = Project) -> dict:
    """Its queued jobs wait in the store until `resume`; running ones go on."""
    return _set_paused(request, name, True, project)


@router.post("/codes/{name}/resume")
def resume_code(request: Request, name: str, project: str = Project) -> dict:
    """Its waiting jobs are queued again within a heartbeat."""
    return _set_paused(request, name, False, project)


def _set_paused(request: Request, name: str, paused: bool, project: str) -> dict:
    codes = _rt(request).store.codes
    codes.set_paused(known_name(name), paused, project=project)
    return code_view(codes.code(name, project=project))


def _zip(text: str, limit_bytes: int) -> bytes:
    """The zip's bytes. Text longer than the base64 of a zip at the limit is refused before it is decoded."""
    if len(text) > 4 * math.ceil(limit_bytes / 3):
        raise ApiError(413, f"archive_base64: {len(text)} characters, the base64 of a zip over the limit of "
                            f"{limit_bytes} bytes (LONGSHORE_CODE_ARCHIVE_LIMIT)", field="archive_base64")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidJob("archive_base64: is not base64 (RFC 4648's alphabet, padded, no line breaks)") from None


@contextlib.contextmanager
def _as_sent() -> Iterator[None]:
    """The core's errors naming a field this API sends under another name, renamed as it was sent."""
    try:
        yield
    except InvalidJob as exc:
        field, colon, rule = str(exc).partition(":")
        if not colon or field not in SENT_AS:
            raise
        raise InvalidJob(f"{SENT_AS[field]}:{rule}") from None
