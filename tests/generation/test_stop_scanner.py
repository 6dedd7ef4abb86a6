"""Stop strings applied to streamed text."""

from __future__ import annotations

import pytest

from lorebase.generation.transformers_backend import StopScanner


@pytest.mark.parametrize(
    ("chunks", "stops", "text", "stopped"),
    [
        (["Hel", "lo ST", "OP after"], ["STOP"], "Hello ", True),
        (["ab", "c"], ["x"], "abc", False),
        (["one<", "|end", "|> two"], ["<|end|>", "two"], "one", True),
        (["S", "T"], ["STOP"], "ST", False),  # a prefix of a stop string that never completes is kept
        (["a", "b"], [], "ab", False),
    ],
)
def test_stop_scanner(chunks: list[str], stops: list[str], text: str, stopped: bool) -> None:
    scanner = StopScanner(stops)
    out = "".join(scanner.feed(c) for c in chunks) + scanner.flush()
    assert (out, scanner.stopped) == (text, stopped)


def test_stop_scanner_holds_back_only_a_possible_stop_prefix() -> None:
    scanner = StopScanner(["STOP"])
    assert scanner.feed("abcdef") == "abc"  # the last 3 characters wait: they could be the start of "STOP"
    assert scanner.feed("g") == "d"
    assert scanner.flush() == "efg"
