"""Progress of long work (reading sources, embedding chunks): a bar on a terminal, and where there is
none (output piped to a file, a server's log) a log line every half minute, so a 25,000-chunk ingest
is never silent for its twenty minutes."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

EVERY_S = 30.0


class Progress:
    """Counts work done. ``bar``: draw a tqdm bar on stderr; otherwise log at INFO on ``log`` every
    ``every_s`` seconds (and once at the end, if it logged before), with the rate so far."""

    def __init__(
        self, desc: str, unit: str, *, total: int | None = None, bar: bool = False, log: logging.Logger | None = None,
        every_s: float | None = None, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.desc, self.unit, self.total, self.done = desc, unit, total, 0
        self._log = log or logging.getLogger("lorebase.progress")
        self._every, self._clock = EVERY_S if every_s is None else every_s, clock
        self._start = self._last = clock()
        self._logged = False
        self._bar: Any = None
        if bar:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=f" {unit}", file=sys.stderr, leave=False)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._clock() - self._last >= self._every:
            self._report()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._logged:
            self._report()

    def _report(self) -> None:
        now = self._clock()
        self._last, self._logged = now, True
        rate = self.done / max(now - self._start, 1e-9)
        of = f" of {self.total:,}" if self.total is not None else ""
        self._log.info("%s: %s%s %s (%.1f/s)", self.desc, f"{self.done:,}", of, self.unit, rate)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
