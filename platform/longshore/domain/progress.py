"""A job's progress, as it reports it from inside its container (the network is off): it writes
`PERCENT MESSAGE` to $PROGRESS_FILE (`echo "40 resizing images" > $PROGRESS_FILE`), or JSON
`{"percent": 40, "msg": "resizing images"}` as IronWorker's clients send it; the last write wins."""

from __future__ import annotations

import json
import math
import re

#: The longest message kept.
MAX_MESSAGE = 1000
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def parse_progress(data: bytes) -> tuple[int, str] | None:
    """(percent 0-100, message) from the progress file's bytes; None when they say nothing usable yet
    (empty, half-written, nonsense): the previous progress stands."""
    text = data.decode("utf-8", "replace").strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            return None
        if not isinstance(document, dict):
            return None
        number, message = document.get("percent"), document.get("msg", document.get("message", ""))
    else:
        first, _, message = text.partition(" ")
        number = first.rstrip("%")
    if isinstance(number, bool):
        return None
    try:
        percent = float(number)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(percent) or not 0 <= percent <= 100:
        return None
    return int(percent), _CONTROL.sub(" ", str(message or "")).strip()[:MAX_MESSAGE]
