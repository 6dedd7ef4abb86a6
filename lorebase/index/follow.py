"""A running server's index follows the store: changes made elsewhere (another API replica, a
scheduler on another host, a CLI ingest) reach this replica's FAISS copy within ``index.follow_s``.

A thread asks the change log whether it moved past this index's position (one small query) and,
when it has, runs the syncer, which applies the new entries in order (lorebase.index.sync). BM25
follows on its own: it rebuilds when the log's last sequence number changes.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lorebase.index.sync import IndexSyncer

log = logging.getLogger(__name__)


class IndexFollower:
    def __init__(self, syncer: IndexSyncer, interval_s: float) -> None:
        self.syncer = syncer
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.applied = 0  # sync rounds that changed something, for status and tests

    def step(self) -> bool:
        """Sync when the log moved; True when something was applied."""
        if not self.syncer.behind():
            return False
        result = self.syncer.sync()
        if result.added or result.removed or result.rebuilt:
            log.info("index follows the store: +%d -%d, %d vectors%s", result.added, result.removed, result.total,
                     f" (rebuilt: {result.reason})" if result.rebuilt else "")
        self.applied += 1
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.step()
            except Exception as e:  # the database away for a moment: serve what we have, try again later
                log.warning("could not follow the store's changes: %s", e)

    def start(self) -> None:
        if self._thread is None and self.interval_s > 0:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="lorebase-index-follower", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
