"""Is it text? Bytes without a NUL may still be binary (compressed data, random noise), and the
latin-1 fallback of our decoders accepts every byte, so decoded text is checked for what writing
never holds: a real share of control characters.

Random bytes decoded as latin-1 are about 23% control characters (C0, DEL and C1), 10% if they
happen to decode as cp1252; prose and code hold almost none (tab, newline, carriage return, form
feed, vertical tab, escape and backspace are allowed: old sources and terminal logs use them).
"""

from __future__ import annotations

import re

SAMPLE_CHARS = 65_536  # enough to judge, cheap on any file
MAX_CONTROL_SHARE = 0.05
MIN_CONTROLS = 8  # a stray byte in a short text ("na\x81ve") is a typo, not binary

# C0 controls other than \b \t \n \v \f \r and ESC; DEL; C1 controls (what undecodable bytes become in latin-1).
_CONTROL = re.compile(r"[\x00-\x07\x0e-\x1a\x1c-\x1f\x7f-\x9f]")


def binary_reason(text: str) -> str | None:
    """Why this decoded text is binary content rather than text, or None when it reads as text."""
    sample = text[:SAMPLE_CHARS]
    if not sample:
        return None
    controls = len(_CONTROL.findall(sample))
    share = controls / len(sample)
    if controls >= MIN_CONTROLS and share > MAX_CONTROL_SHARE:
        return (f"binary content: {share:.0%} control characters in the first {len(sample)} characters "
                f"(text has almost none; the limit is {MAX_CONTROL_SHARE:.0%})")
    return None
