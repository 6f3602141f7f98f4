#!/usr/bin/env python3
"""Rewrite the README's settings table from `longshore settings` (tests/unit checks they are equal)."""

import re
import subprocess
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
table = subprocess.run(["longshore", "settings"], check=True, capture_output=True, text=True).stdout.rstrip("\n")
text = README.read_text()
updated = re.sub(r"(<!-- settings-table -->\n).*?(\n<!-- /settings-table -->)", lambda m: m.group(1) + table + m.group(2),
                 text, flags=re.DOTALL)
README.write_text(updated)
print("README settings table", "updated" if updated != text else "unchanged")
