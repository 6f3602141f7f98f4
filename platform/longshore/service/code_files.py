"""An archive code's files for its jobs' containers: read from the store (the only thing every host
shares), turned into a tar once per worker process, and kept by digest for the next job."""

from __future__ import annotations

import threading
from collections import OrderedDict

from longshore.domain.archives import ArchiveLimits, archive_as_tar
from longshore.engine.contract import CODE_FOLDER
from longshore.store.codes import CodeStore

#: Tars kept per process, at most this many bytes together (the newest one always).
CACHE_BYTES = 256 << 20


class CodeFiles:
    """Tars of code archives by digest, least recently used dropped first."""

    def __init__(self, max_bytes: int = CACHE_BYTES):
        self.max_bytes = max_bytes
        self._tars: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def tar(self, codes: CodeStore, limits: ArchiveLimits, sha256: str) -> bytes:
        """The archive's files as a tar under CODE_FOLDER (checked again as it is made)."""
        with self._lock:  # held while a tar is made: one build per digest, never several side by side
            if sha256 in self._tars:
                self._tars.move_to_end(sha256)
                return self._tars[sha256]
            made = archive_as_tar(codes.archive(sha256), CODE_FOLDER, limits)
            self._tars[sha256] = made
            while sum(map(len, self._tars.values())) > self.max_bytes and len(self._tars) > 1:
                self._tars.popitem(last=False)
        return made
