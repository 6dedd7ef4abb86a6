"""What every benchmark table states about the machine it ran on."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path


def cpu_name(default: str | None = None) -> str:
    """The CPU model from /proc/cpuinfo, else `default`, else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return default or platform.processor() or platform.machine() or "unknown CPU"


def run_header() -> dict[str, object]:
    """The machine, the load when the run ended and the date, for a bench's JSON report."""
    return {"machine": f"{cpu_name()}, {os.cpu_count()} cores", "load": round(os.getloadavg()[0], 1),
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
