"""Output helpers shared by every `retailbot` subcommand."""

from __future__ import annotations

import json


def print_json(obj) -> None:
    """One JSON line, UTF-8 kept readable (for --json outputs)."""
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def name_some(items: list[str], most: int = 5) -> str:
    """'a, b, c' or 'a, b, c, d, e and 3 more' (bounded: a file may hold many names); 'none'."""
    shown = ', '.join(items[:most])
    return shown + (f' and {len(items) - most} more' if len(items) > most else '') if items else 'none'
