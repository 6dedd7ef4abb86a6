"""Binary content that holds no NUL is told apart from text by its share of control characters."""

from __future__ import annotations

import random

import pytest

from lorebase.ingest.files.text_sniff import binary_reason
from lorebase.ingest.git.tree import decode_text
from tests.conftest import REPO_ROOT


def test_this_repositorys_own_files_read_as_text() -> None:
    files = [*sorted((REPO_ROOT / "lorebase").rglob("*.py")), REPO_ROOT / "README.md", *sorted((REPO_ROOT / "datasets").rglob("*.vtt"))]
    assert len(files) > 50
    for f in files:
        assert binary_reason(decode_text(f.read_bytes())[0]) is None, f


@pytest.mark.parametrize("text", [
    "\x1b[31mERROR\x1b[0m retry failed\n" * 200,  # a colour terminal log
    "int main(void)\n{\n\treturn 0;\n}\n\f\n" * 100,  # form feeds between pages of old C sources
    "na\x81ve caf\xe9",  # one stray undecodable byte in a short text
    "",
])
def test_text_with_allowed_controls_passes(text: str) -> None:
    assert binary_reason(text) is None


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_without_a_nul_are_binary_in_any_decoding(seed: int) -> None:
    rng = random.Random(seed)
    data = bytes(rng.randrange(1, 256) for _ in range(5000))
    text, encoding = decode_text(data)
    assert encoding == "latin-1"
    reason = binary_reason(text)
    assert reason is not None and reason.startswith("binary content:")
    # decoded as cp1252 instead (no undefined byte), the C0 controls alone still give it away
    cp = bytes(b for b in data if b not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)).decode("cp1252")
    assert binary_reason(cp) is not None
