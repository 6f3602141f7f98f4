"""A code archive as its uploader gives it, made the zip's bytes on the uploader's side: by the Python API
before it validates the upload, by `longshore.Client` before it sends it."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

from longshore.errors import InvalidJob


def read_archive(archive: bytes | str | os.PathLike, limit_bytes: int) -> bytes:
    """A code archive's zip: given as bytes, read from a .zip file, or made from a folder's files (links
    refused). Reads at most one byte over the limit, for the validator to refuse."""
    if isinstance(archive, (bytes, bytearray)):
        return bytes(archive)
    path = Path(archive)
    try:
        if not path.is_dir():
            with path.open("rb") as file:
                return file.read(limit_bytes + 1)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zipped:
            for item in sorted(path.rglob("*")):
                if item.is_symlink():
                    raise InvalidJob(f"archive: {item} is a link; a code archive holds files and folders only")
                if item.is_file():
                    zipped.write(item, item.relative_to(path).as_posix())
                if buffer.tell() > limit_bytes:
                    break
        return buffer.getvalue()
    except OSError as exc:
        raise InvalidJob(f"archive: cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # a file name that is not UTF-8
        raise InvalidJob(f"archive: cannot zip {path}: {exc}") from None
