"""Output helpers shared by every `retailbot` subcommand."""

from __future__ import annotations

import json


def print_json(obj) -> None:
    """One JSON line, UTF-8 kept readable (for --json outputs)."""
    print(json.dumps(obj, ensure_ascii=False), flush=True)
