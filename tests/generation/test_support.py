"""The meaning check catches what word share cannot: negation, swapped names and opposites, numbers."""

from __future__ import annotations

import pytest

from lorebase.generation.support import check_claim

SOURCE = (
    "Flask uses Jinja as its template engine. The development server reloads the application when "
    "code changes. Sessions are signed with the SECRET_KEY and expire after 31 days. "
    "The test client does not run the before_request hooks twice."
)


@pytest.mark.parametrize("claim", [
    "Flask uses Jinja as its template engine.",
    "The development server reloads the application when code changes [S1].",
    "Sessions are signed with the SECRET_KEY.",
    "Sessions expire after 31 days.",
    "The test client does not run the before_request hooks twice.",
])
def test_supported_sentences_pass(claim: str) -> None:
    assert check_claim(claim, SOURCE).supported, check_claim(claim, SOURCE).reason


@pytest.mark.parametrize("claim,why", [
    ("Flask does not use Jinja as its template engine.", "negation"),
    ("The development server never reloads the application when code changes.", "negation"),
    ("The test client runs the before_request hooks twice.", "negation"),
    ("Sessions are signed with the SECRET_KEY and expire after 30 days.", "number"),
    ("Flask uses Mako as its template engine.", "Mako"),
    ("Sessions are signed with the before_request and expire after 31 days.", "before_request"),
])
def test_perturbed_sentences_fail_with_a_reason(claim: str, why: str) -> None:
    c = check_claim(claim, SOURCE)
    assert not c.supported
    assert why in c.reason or (why == "negation" and "negation" in c.reason)


def test_opposite_words_are_caught() -> None:
    src = "Caching is enabled by default in production."
    assert check_claim("Caching is enabled by default in production.", src).supported
    c = check_claim("Caching is disabled by default in production.", src)
    assert not c.supported and "disabled" in c.reason


def test_word_share_below_threshold_fails() -> None:
    assert not check_claim("The router compiles regular expressions lazily.", SOURCE).supported
