"""Rule-based question-answer pairs, one set of templates per source kind.

Answers are extractive: a docstring, a signature, a commit subject or body, the first sentences of
an issue, a heading's section, a sentence of a lecture. Each cites its chunk as ``[S1]`` and is
validated with the grounding check against what the model sees of that chunk; pairs that fail are
returned as rejections with the reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from lorebase.citations import format_timestamp
from lorebase.finetune.qa_drafts import QADraft, draft_for, with_citation
from lorebase.generation import grounding
from lorebase.store.models import Chunk, Source

_RETURNS = re.compile(r"->\s*(.+?)\s*:?\s*$")
_HOWTO_VERBS = frozenset(
    "add build configure connect create deploy enable evaluate index ingest install prepare run search serve set "
    "start test train upgrade use write".split()
)
_SHA_LEN = 7


@dataclass
class Rejected:
    question: str
    category: str
    reason: str


@dataclass
class TemplateResult:
    pairs: list[QADraft]
    rejected: list[Rejected]


_ABBREVIATION_END = re.compile(r"\b(?:e\.g|i\.e|etc|vs|cf)\.$", re.IGNORECASE)
# Common verbs make poor key phrases ("projections gives"): a phrase never takes them.
_PHRASE_VERBS = frozenset(
    "gives give makes make uses use takes take becomes become means mean shows show keeps keep gets get needs need "
    "holds hold appears appear works work says say called call wants want lets let sees see puts put finds find goes "
    "comes come tells tell".split()
) | frozenset(  # and words that qualify rather than name ("least forty-five", "updated without")
    "without within least each plus last first next every many much few other same own then once still even well both "
    "either neither again already always never often instead rather because while since until after before whole "
    "another any all some one two three four five six seven eight nine ten hundred thousand per via like unlike "
    "example today week now later".split()
)


def sentences(text: str) -> list[str]:
    """Sentences with content, an abbreviation such as "e.g." not taken for a sentence end."""
    out: list[str] = []
    for s in grounding.split_sentences(text):
        if out and _ABBREVIATION_END.search(out[-1]):
            out[-1] = f"{out[-1]} {s}"
        else:
            out.append(s)
    return [s for s in out if grounding.content_words(s)]


def lead(text: str, max_chars: int, max_sentences: int = 3, min_words: int = 5) -> str:
    """The first sentences of ``text``: at least ``min_words`` content words when there are, at most
    ``max_sentences`` and about ``max_chars`` (cut at a word if one sentence is longer). A sentence
    ending in a colon introduces a list or code that is not here, so it ends the answer."""
    out: list[str] = []
    words = 0
    for s in sentences(text):
        if s.endswith(":") or (out and (words >= min_words or len(out) >= max_sentences)):
            break
        if out and len(" ".join([*out, s])) > max_chars:
            break
        out.append(s)
        words += len(grounding.content_words(s))
    text = " ".join(out)
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0].rstrip(",;:") + "."
    return text if words >= min_words or len(text) >= 40 else ""


def _prose(lines: list[str]) -> str:
    """Markdown section body without headings, tables, fences and code inside them."""
    keep: list[str] = []
    fenced = False
    for line in lines:
        s = line.strip()
        if s.startswith("```"):
            fenced = not fenced
            continue
        if fenced or s.startswith(("#", "|", "<!--")) or not s:
            if keep and keep[-1] != "":
                keep.append("")
            continue
        keep.append(s.lstrip("-*> ").strip())
    return "\n".join(" ".join(p.split("\n")) for p in "\n".join(keep).split("\n\n")).strip()


class Templates:
    """Makes the rule-based pairs of one chunk. ``threshold`` is the grounding support threshold."""

    def __init__(self, threshold: float, max_answer_chars: int, max_pairs: int) -> None:
        self.threshold = threshold
        self.max_answer_chars = max_answer_chars
        self.max_pairs = max_pairs
        self._rarity_of: tuple[str, Callable[[str], float]] = ("", lambda w: 0.0)
        self._by_kind: dict[str, Callable[[Source, Chunk], Iterator[tuple[str, str, str]]]] = {
            "code": self._code,
            "commit": self._commit,
            "issue": self._thread,
            "pull_request": self._thread,
            "doc": self._doc,
            "transcript": self._transcript,
        }

    def pairs(self, source: Source, chunk: Chunk) -> TemplateResult:
        made = self._by_kind.get(source.kind)
        result = TemplateResult([], [])
        if made is None:
            return result
        for category, question, answer in made(source, chunk):
            draft, ok = draft_for(source, chunk, question, answer, category=category, method="template",
                                  threshold=self.threshold, extra={"answer": "extractive"})
            if ok:
                result.pairs.append(draft)
            else:
                result.rejected.append(Rejected(question, category, str(draft.validation.get("reason"))))
            if len(result.pairs) >= self.max_pairs:
                break
        return result

    # --- code: what it does, what it returns, where it is defined -------------------------------

    def _code(self, source: Source, chunk: Chunk) -> Iterator[tuple[str, str, str]]:
        meta: dict[str, Any] = chunk.meta or {}
        symbol = meta.get("symbol")
        kind = meta.get("symbol_kind")
        if not symbol or kind in (None, "module") or meta.get("part", 1) != 1:
            return
        noun = {"function": "the function", "method": "the method", "class": "the class"}.get(kind, "")
        named = f"{noun} `{symbol}`".strip()
        if source.path:
            named += f" in `{source.path}`"
        doc = lead(docstring(chunk.text) or "", self.max_answer_chars)
        if doc:
            yield "code.purpose", f"What does {named} do?", with_citation(self._cut(doc))
        sig = str(meta.get("signature") or "")
        m = _RETURNS.search(sig)
        if kind != "class" and m and m.group(1) not in ("None", "NoReturn"):
            yield "code.returns", f"What does {named} return?", with_citation(f"`{symbol}` returns `{m.group(1)}`.")
        if source.path and chunk.start_line is not None:
            where = f"`{source.path}`, lines {chunk.start_line}-{chunk.end_line}"
            yield "code.location", f"Where is {noun} `{symbol}` defined?".replace("  ", " "), with_citation(f"`{symbol}` is defined in {where}.")

    # --- commits: what changed, and why ---------------------------------------------------------

    def _commit(self, source: Source, chunk: Chunk) -> Iterator[tuple[str, str, str]]:
        if (chunk.meta or {}).get("part") != "message" or not source.commit:
            return
        short = source.commit[:_SHA_LEN]
        message = chunk.text.split("\nAuthor: ", 1)[0].strip()
        subject, _, body = message.partition("\n")
        subject = subject.strip()
        if subject:
            yield "commit.what", f"What changed in commit {short}?", with_citation(f"Commit {short}: {subject.rstrip('.')}.")
        why = lead(body, self.max_answer_chars)
        if why:
            files = [f.get("path") for f in (source.meta or {}).get("files", []) if isinstance(f, dict)]
            if len(files) == 1:
                question = f"Why was `{files[0]}` changed in commit {short}?"
            else:
                question = f"Why was the change \"{subject.rstrip('.')}\" made in commit {short}?"
            yield "commit.why", question, with_citation(self._cut(why))

    # --- issues and pull requests: the problem, and how it was resolved ---------------------------

    def _thread(self, source: Source, chunk: Chunk) -> Iterator[tuple[str, str, str]]:
        if (chunk.meta or {}).get("part") != "post" or chunk.ordinal != 0 or source.number is None:
            return
        n = source.number
        pull = source.kind == "pull_request"
        head, _, body = chunk.text.partition("\n\n")
        problem = lead(body, self.max_answer_chars) if body.strip() != "(no description)" else ""
        if problem:
            question = f"What does pull request #{n} change?" if pull else f"What was the problem in issue #{n}?"
            yield ("pull_request" if pull else "issue") + ".problem", question, with_citation(self._cut(problem))
        lines = head.splitlines()
        status = lines[1].split(" · ")[1] if len(lines) > 1 and " · " in lines[1] else ""
        links = [ln for ln in lines[2:] if ln.startswith(("Closed by pull request", "Closes "))]
        meta = source.meta or {}
        if pull and status.startswith(("merged", "closed")):
            yield "pull_request.resolution", f"How was pull request #{n} resolved?", with_citation(f"Pull request #{n} was {status}.")
        elif not pull and meta.get("state") == "closed":
            answer = links[0] if links else f"Issue #{n} was {status}."
            yield "issue.resolution", f"How was issue #{n} resolved?", with_citation(answer)

    # --- docs: how to do what a heading names ---------------------------------------------------

    def _doc(self, source: Source, chunk: Chunk) -> Iterator[tuple[str, str, str]]:
        path = [str(h) for h in (chunk.meta or {}).get("heading_path") or []]
        if not path:
            return
        heading = path[-1].strip().rstrip(":")
        body = lead(_prose(chunk.text.splitlines()), self.max_answer_chars)
        if not body or not heading:
            return
        words = heading.split()
        first = words[0].lower()
        if heading.lower().startswith("how to "):
            question = f"How do I {heading[7:].rstrip('?')}?"
        elif first in _HOWTO_VERBS:
            question = f"How do I {first} {' '.join(words[1:])}?".replace(" ?", "?")
        else:
            where = f" in `{source.path}`" if source.path else ""
            question = f"What does the section \"{' > '.join(path)}\"{where} explain?"
        yield "doc.howto", question, with_citation(self._cut(body))

    # --- lecture transcripts: what the lecture says about a key phrase, and when ----------------

    def _transcript(self, source: Source, chunk: Chunk) -> Iterator[tuple[str, str, str]]:
        if chunk.start_time is None:
            return
        rarity = self._rarity(source)
        ranked = sorted(sentences(chunk.text), key=_informative, reverse=True)
        used: set[str] = set()
        for sent in ranked[:2]:
            phrase = key_phrase(sent, used, rarity)
            if not phrase or len(sent) > self.max_answer_chars:
                continue
            used.add(phrase.lower())
            when = format_timestamp(chunk.start_time)
            question = f"What does {_lecture_name(source)} say about {phrase}?"
            yield "transcript.fact", question, with_citation(f"At {when}, {_lower_first(sent)}")

    def _rarity(self, source: Source) -> Callable[[str], float]:
        """Inverse sentence frequency of each (stemmed) word over the whole lecture."""
        if self._rarity_of[0] != source.id:
            sents = sentences(source.text or "")
            df: dict[str, int] = {}
            for sent in sents:
                for w in set(grounding.content_words(sent)):
                    df[w] = df.get(w, 0) + 1
            n = len(sents)
            self._rarity_of = (source.id, lambda w: math.log((n + 1) / (df.get(w, 0) + 1)))
        return self._rarity_of[1]

    def _cut(self, text: str) -> str:
        if len(text) <= self.max_answer_chars:
            return text
        return text[: self.max_answer_chars].rsplit(" ", 1)[0].rstrip(",;:") + "."


def docstring(code: str) -> str | None:
    """The first paragraph of the docstring of the definition that ``code`` holds (Python), if any."""
    import ast
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            doc = ast.get_docstring(node, clean=True)
            return " ".join(doc.split("\n\n", 1)[0].split()) if doc else None
    return None


def _lecture_name(source: Source) -> str:
    """"Lecture 1" for "Lecture 1: How retrieval works", else the quoted title."""
    title = (source.title or source.lecture or "").strip()
    head = title.split(":", 1)[0].strip()
    if ":" in title and 0 < len(head) <= 30:
        return head if head.lower().startswith("lecture") else f"the lecture \"{head}\""
    return f"the lecture \"{title}\"" if title else "the lecture"


def _informative(sentence: str) -> float:
    """Distinct long content words, a bonus for numbers and names: what makes a fact worth asking about."""
    words = set(grounding.content_words(sentence))
    long_words = sum(len(w) >= 5 for w in words)
    numbers = sum(w.isdigit() for w in words)
    return long_words + 0.5 * numbers + 0.25 * len(words)


_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9'-]*")


def key_phrase(sentence: str, used: set[str], rarity: Callable[[str], float]) -> str | None:
    """The rarest two consecutive content words of the sentence (rarity: of a word in the whole
    lecture), else its rarest long word: a phrase the question can name without giving the answer."""
    runs: list[list[str]] = []
    current: list[str] = []
    for t in _TOKEN.findall(sentence):
        if len(t) < 3 or not grounding.content_words(t) or t.lower() in _PHRASE_VERBS:  # these end a run
            if current:
                runs.append(current)
            current = []
        else:
            current.append(t)
    if current:
        runs.append(current)

    def score(phrase: str) -> float:
        return sum(rarity(w) for w in grounding.content_words(phrase))

    pairs = [f"{r[i]} {r[i + 1]}" for r in runs for i in range(len(r) - 1)]
    singles = [w for r in runs for w in r if len(w) >= 5]
    for candidates in (pairs, singles):
        fresh = [c for c in candidates if c.lower() not in used]
        if fresh:
            best = max(fresh, key=score)
            # Names and acronyms stay as written; a word capitalised only because it starts the sentence does not.
            return best if any(ch.isupper() for w in best.split() for ch in w[1:]) else best.lower()
    return None


def _lower_first(sentence: str) -> str:
    first = sentence.split(" ", 1)[0]
    if first and first[0].isupper() and first[1:].islower() and first != "I":
        return first[0].lower() + sentence[1:]
    return sentence
