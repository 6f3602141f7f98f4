"""A job's progress, as the watcher reads it from the file the job writes."""

from __future__ import annotations

import pytest

from longshore.domain.progress import parse_progress


@pytest.mark.parametrize("data, parsed", [
    (b"40 resizing images\n", (40, "resizing images")),
    (b"100%", (100, "")),
    (b"12.5 a\x1b[31mred\x00 word", (12, "a [31mred  word")),
    (b'{"percent": 60, "msg": "from a client"}', (60, "from a client")),
    (b"", None), (b"half", None), (b"101 too much", None), (b"-1 no", None), (b"nan x", None),
    (b'{"percent": "x"}', None), (b"[1]", None), (b'{"percent": 5', None),
])
def test_a_jobs_progress_is_read_from_what_it_wrote(data, parsed):
    assert parse_progress(data) == parsed


@pytest.mark.parametrize("data", [b"[" * 3000, b'{"percent": true}', b'{"percent": 1e999}'])
def test_nonsense_progress_is_ignored_not_raised(data):
    assert parse_progress(data) is None
