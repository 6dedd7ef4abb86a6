"""Cut a streamed answer into whole sentences as it arrives, so each can be checked before it is shown.

A sentence is complete once the text after it has started and is not one of its citations: "... in
2019. [S2] Then ..." gives "... in 2019. [S2]". A fenced code block is one piece, complete at its
closing fence. A list item or a line is complete at its newline.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# A sentence ends at . ! ? and a space, but not after a title or a common abbreviation ("Mr. Godin").
_END = re.compile(r"(?<!\bMr\.)(?<!\bMs\.)(?<!\bDr\.)(?<!\bMrs\.)(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bvs\.)(?<=[.!?])\s+|\n+")
_CITES = re.compile(r"(?:\s*\[S\d+\])+")
_PARTIAL_CITE = re.compile(r"\s*\[(?:S\d*)?$")
FENCE = "```"


class SentenceStream:
    def __init__(self) -> None:
        self._buf = ""

    def feed(self, text: str) -> Iterator[str]:
        self._buf += text
        while True:
            piece = self._next(final=False)
            if piece is None:
                return
            yield piece

    def close(self) -> Iterator[str]:
        while (piece := self._next(final=True)) is not None:
            yield piece

    def _next(self, final: bool) -> str | None:
        buf = self._buf
        lead = len(buf) - len(buf.lstrip())
        if lead == len(buf):
            if final:
                self._buf = ""
            return None
        if buf.startswith(FENCE, lead):
            close = buf.find(FENCE, lead + 3)
            if close < 0:
                if not final:
                    return None
                piece, self._buf = buf[lead:].rstrip() + "\n" + FENCE, ""  # an unclosed fence is closed here
                return piece
            end = close + 3
            m = _CITES.match(buf, end)
            end = m.end() if m else end
            piece, self._buf = buf[lead:end], buf[end:]
            return piece
        fence = buf.find(FENCE, lead)
        for m in _END.finditer(buf, lead):
            if fence >= 0 and m.start() > fence:
                break
            rest = buf[m.end():]
            cites = _CITES.match(rest)
            if cites and "\n" not in m.group(0):
                after = rest[cites.end():]
                if not after.strip() and not final:
                    return None  # the citations may go on
                cut = m.end() + cites.end()
            else:
                if not rest and not final:
                    return None  # the sentence's citations may still come
                if _PARTIAL_CITE.match(rest) and not final:
                    return None
                cut = m.start()
            piece, self._buf = buf[lead:cut].strip(), buf[cut:]
            if piece:
                return piece
        if fence > lead:
            piece, self._buf = buf[lead:fence].strip(), buf[fence:]
            return piece or None
        if final:
            piece, self._buf = buf[lead:].strip(), ""
            return piece or None
        return None
