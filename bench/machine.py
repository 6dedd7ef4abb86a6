"""What every benchmark table states about the machine it ran on."""

from __future__ import annotations

import platform
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
