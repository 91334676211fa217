"""LiveStore: the store a running node uses, swapped for a newer one when the sync brings data.

`current()` hands out one immutable `Store` snapshot; a consumer takes it at the start of a piece
of work (a dialogue turn, a guide goal) and keeps it to the end, so a conversation in progress
never sees half of an update. `reload()` reads the store again and swaps the reference in one
assignment only when the new store loaded; otherwise the old one stays and the reason is logged.
Pure (no rclpy): `retail_ros.node_support.watch_store` drives it from `/sync/data_updates`.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable

from retail_common.store import Store, StoreError, load_store

__all__ = ['LiveStore']


class LiveStore:
    """Raises StoreError at construction when the store cannot be used at all."""

    def __init__(
        self,
        store_dir: str | Path,
        data_dir: str | Path | None = None,
        log: Callable[[str], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.data_dir = Path(data_dir) if data_dir else None
        logger = logging.getLogger('retail_common.live_store')
        self._error = log or logger.error
        self._warn = warn or logger.warning
        self._reload_lock = threading.Lock()
        self.last_error: str | None = None
        self._store = load_store(self.store_dir, self.data_dir)

    def current(self) -> Store:
        """The store in use now (an immutable snapshot: keep it for one piece of work)."""
        return self._store

    def reload(self) -> bool:
        """Read the store again. True: the new store is in use (or nothing changed); False: it
        could not be loaded, the previous one stays in use and the one-line reason is logged."""
        with self._reload_lock:
            try:
                store = load_store(self.store_dir, self.data_dir)
            except StoreError as exc:
                self.last_error = str(exc)
                self._error(f'{exc}; keeping the store loaded before (version {self._store.version})')
                return False
            except Exception as exc:  # noqa: BLE001 - a file no rule foresaw must not take the node down mid-shift
                self.last_error = f'{self.store_dir}: cannot be read ({type(exc).__name__}: {str(exc)[:200]})'
                self._error(f'{self.last_error}; keeping the store loaded before (version {self._store.version})')
                return False
            self.last_error = None
            if store.version != self._store.version:
                for issue in store.issues:
                    if issue not in self._store.issues:
                        self._warn(issue)
                self._store = store  # one reference assignment: readers see old or new
            return True
