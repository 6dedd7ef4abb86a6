"""ingest.url_hosts_denied / url_hosts_allowed: what a URL source sent through the API may point at."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorebase.errors import InvalidInput, SettingsError
from lorebase.ingest.url_hosts import check_url_host, denied_hosts, url_host
from lorebase.settings import load_settings


def test_unset_means_inward_hosts_beyond_loopback_and_nothing_on_loopback(tmp_path: Path) -> None:
    s = load_settings(home=tmp_path)
    assert denied_hosts(s, bound_to_loopback=False) == ["non-global"]
    assert denied_hosts(s, bound_to_loopback=True) == []
    assert denied_hosts(load_settings(home=tmp_path, ingest={"url_hosts_denied": []}), bound_to_loopback=False) == []
    chosen = load_settings(home=tmp_path, ingest={"url_hosts_denied": ["Loopback", "10.0.0.0/8", "git.internal"]})
    assert denied_hosts(chosen, bound_to_loopback=True) == ["loopback", "10.0.0.0/8", "git.internal"]


def test_a_setting_that_is_no_class_network_or_host_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="url_hosts_denied"):
        load_settings(home=tmp_path, ingest={"url_hosts_denied": ["intranet please"]})


@pytest.mark.parametrize(("spec", "denied", "refused"), [
    ("http://127.0.0.1/r.git", ["loopback"], True),
    ("http://127.0.0.1/r.git", ["link-local"], False),  # another class
    ("http://10.9.8.7/r.git", ["10.0.0.0/8"], True),
    ("http://10.9.8.7/r.git", ["192.168.0.0/16"], False),
    ("http://localhost/r.git", ["localhost"], True),  # by name
    ("http://localhost/r.git", ["127.0.0.0/8"], True),  # by the address the name resolves to
    ("https://host.example/talk.mp4", [], False),  # nothing denied: not even resolved
    ("github:o/r", ["non-global"], False),  # github.base_url is a setting, not the request's
    ("/srv/lectures", ["non-global"], False),  # local paths are api_roots' business
])
def test_denied_entries(spec: str, denied: list[str], refused: bool) -> None:
    if refused:
        with pytest.raises(InvalidInput, match="url_hosts_denied"):
            check_url_host(spec, denied)
    else:
        check_url_host(spec, denied)


def test_allowed_entries_win_and_unresolvable_hosts_are_refused_when_checking() -> None:
    check_url_host("http://127.0.0.1/r.git", ["non-global"], ["127.0.0.1"])
    with pytest.raises(InvalidInput, match="cannot resolve"):
        check_url_host("https://no-such-host.invalid/r.git", ["non-global"])
    assert url_host("git@GitLab.Internal:o/r.git") == "gitlab.internal"
