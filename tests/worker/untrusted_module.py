"""Stands for code an attacker names in a crafted job: importing it leaves a mark (tests/worker/test_allowed.py)."""

from __future__ import annotations

import os
from pathlib import Path

MARK = os.environ.get("ALLOWLIST_TEST_MARK")
if MARK:
    Path(MARK).write_text("imported")


def run(*args: object) -> None:
    if MARK:
        Path(MARK).write_text("ran")
