"""Train / validation / test splits grouped by source.

A pair's split is a function of its group (the source it was made from) alone: a hash of the source
id, salted, mapped onto [0, 1). Every pair of a source therefore lands in the same split, in every
run, whatever else the store holds, so no source leaks across splits and re-generation is stable.
"""

from __future__ import annotations

import hashlib

SPLITS = ("train", "validation", "test")


def split_for(group: str, *, salt: str, train_share: float, validation_share: float) -> str:
    h = hashlib.sha256(f"{salt}\x00{group}".encode()).digest()
    u = int.from_bytes(h[:8], "big") / 2**64
    if u < train_share:
        return "train"
    if u < train_share + validation_share:
        return "validation"
    return "test"
