"""Which hosts a URL source sent through the API may name.

A server open to several users must not become a way to reach what only it can reach: its own
ports (a model server, a database), the private network, or the cloud metadata address at
169.254.169.254. Host names are resolved and every address they give is checked, so a name that
points inward is caught like the address itself.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from lorebase.errors import InvalidInput
from lorebase.settings import URL_HOST_CLASSES, Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
CLASSES = URL_HOST_CLASSES
INWARD = ["non-global"]  # the default beyond loopback: anything not globally routable


def denied_hosts(settings: Settings, *, bound_to_loopback: bool) -> list[str]:
    """ingest.url_hosts_denied, or when unset: INWARD for a server reachable from elsewhere, else none."""
    if settings.ingest.url_hosts_denied is not None:
        return settings.ingest.url_hosts_denied
    return [] if bound_to_loopback else list(INWARD)


def _in_class(ip: IPAddress, name: str) -> bool:
    return {
        "loopback": ip.is_loopback, "private": ip.is_private, "link-local": ip.is_link_local,
        "unspecified": ip.is_unspecified, "multicast": ip.is_multicast, "reserved": ip.is_reserved,
        "non-global": not ip.is_global,
    }[name]  # fmt: skip


def _matches(host: str, addresses: Sequence[IPAddress], entry: str) -> bool:
    if entry in CLASSES:
        return any(_in_class(ip, entry) for ip in addresses)
    try:
        net = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return host == entry  # a host name
    return any(ip in net for ip in addresses)


def url_host(spec: str) -> str | None:
    """The host a remote spec will contact, lower-case; None for local ones and github: (which use
    github.base_url, a setting rather than the request)."""
    from lorebase.ingest.git.gitcli import looks_like_git_url, validate_clone_url
    from lorebase.ingest.transcripts.media_download import is_media_url

    if spec.startswith("github:"):
        return None
    if is_media_url(spec):
        return (urlsplit(spec).hostname or "").lower()
    if looks_like_git_url(spec):
        url = validate_clone_url(spec)
        return url.host or None  # "" for file://
    return None


def resolve(host: str) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise InvalidInput(f"cannot resolve the host {host!r} to check it against ingest.url_hosts_denied: {e}") from None
    out: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])  # drop an IPv6 zone
        mapped = getattr(ip, "ipv4_mapped", None)
        out.append(mapped or ip)  # ::ffff:127.0.0.1 is 127.0.0.1
    return out


def check_url_host(spec: str, denied: Sequence[str], allowed: Sequence[str] = ()) -> None:
    """Raise InvalidInput when the URL source names a denied host (after the allowed ones are let through)."""
    if not denied:
        return
    host = url_host(spec)
    if host is None:
        return
    host = host.strip("[]")
    addresses = resolve(host)
    if any(_matches(host, addresses, a) for a in allowed):
        return
    hit = next((d for d in denied if _matches(host, addresses, d)), None)
    if hit is not None:
        shown = ", ".join(sorted({str(a) for a in addresses}))
        raise InvalidInput(
            f"{spec}: the host {host} ({shown}) is {hit if hit in CLASSES else 'listed'} in ingest.url_hosts_denied; "
            "URL sources through the API must point elsewhere (ingest.url_hosts_allowed lets chosen hosts through)"
        )
