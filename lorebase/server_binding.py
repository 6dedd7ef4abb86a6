"""Where the server listens, beside its settings (settings.server): whether an address is loopback
decides whether API keys (api/security.py) and a UI password (ui/mount.py) are required, and which
hosts ingest may reach through the API. Kept out of api/ so the UI, a floor beside it, need not import it."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
