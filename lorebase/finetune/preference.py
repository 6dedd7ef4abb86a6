"""Preference pairs from the served model's own answers: for one prompt, an answer that passed the support
check and cited a gold source (chosen) against one that did not (rejected).

Imitation of the model's good answers (rejection sampling) taught it to say less: a one-line quote passes
the check most easily, so the kept answers were the short, single-source ones. A pair asks a different
question, which of two answers *to the same prompt* is better, so length and the number of sources cited
are no longer what the selection rewards. The rows are trl's conversational preference format
(``{"prompt": [messages], "chosen": [assistant], "rejected": [assistant]}``) for DPO.

Records are answer-benchmark records (``lorebase.eval.answers``) with the prompt as served (``messages``)
and what the model wrote before the check trimmed or replaced it (``written``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

Record = dict[str, Any]


def good(record: Record) -> bool:
    """An answer that holds up: verified by the support check and citing a gold source."""
    return bool(record.get("verified") and record.get("cites_gold") and record.get("messages"))


def target(record: Record) -> str | None:
    """A good answer as the model would write it: its own verified answer (without the top source's quote the
    service may append), or the quoted evidence lines of the extractive fallback without the quote marks and
    speaker labels ("> Name: line [S1]" -> "line [S1]")."""
    if not good(record):
        return None
    if record["mode"] == "generated":
        from lorebase.generation.quotes import TOP_QUOTE_LEAD

        # The service appends the top source's quote when the answer skips it: the model did not write it.
        return str(record["answer"]).split(f"\n\n{TOP_QUOTE_LEAD}\n", 1)[0].strip()
    if record["mode"] == "extractive":
        from lorebase.generation.quotes import quoted_text

        return quoted_text(str(record["answer"])) or None
    return None


def failed_text(record: Record) -> str | None:
    """What the model wrote when its own words did not hold up: the whole answer failed, or the check turned
    down every sentence and the extractive fallback quoted the evidence instead (the quote held up, the
    model's text did not). None when nothing was written."""
    text = str(record.get("written") or "").strip()
    if not text or (good(record) and record.get("mode") != "extractive"):
        return None
    return text


@dataclass
class PairStats:
    prompts: int = 0  # distinct (question, prompt) groups
    pairs: int = 0
    all_good: int = 0  # every answer to the prompt held up: nothing to prefer
    all_bad: int = 0  # none did
    chosen_generated: int = 0  # chosen answers in the model's own words (the rest are quoted evidence)


def _chosen_rank(r: Record) -> tuple[int, int, int]:
    # The model's own words first (on its own distribution), then more gold sources cited, then longer:
    # the opposite of what imitation favoured.
    return (r["mode"] == "generated", int(r.get("cited_gold") or 0), len(target(r) or ""))


def preference_pairs(records: Iterable[Record], stats: PairStats | None = None) -> list[dict[str, Any]]:
    """One pair per prompt that has both a good and a bad answer among ``records`` (several passes over the
    same questions). Answers are grouped by question *and* exact prompt, since a pair compares two answers
    to one prompt. Only answerable questions count. The rejected answer is the model's own text that failed
    (``failed_text``), also where the fallback's quote then held up: with one greedy and a few sampled passes,
    most prompts have a verified answer in one pass and a turned-down one in another."""
    stats = stats if stats is not None else PairStats()
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for r in records:
        if r.get("kind") == "unanswerable" or not r.get("messages"):
            continue
        groups[(str(r["question"]), repr(r["messages"]))].append(r)
    rows: list[dict[str, Any]] = []
    for answers in groups.values():
        stats.prompts += 1
        chosen = [r for r in answers if target(r)]
        rejected = [r for r in answers if failed_text(r)]
        if not chosen:
            stats.all_bad += 1
            continue
        if not rejected:
            stats.all_good += 1
            continue
        best = max(chosen, key=_chosen_rank)
        worst = min(rejected, key=lambda r: int(r.get("pass", 0)))  # the served (first) pass when it failed
        stats.pairs += 1
        stats.chosen_generated += best["mode"] == "generated"
        rows.append({
            "prompt": best["messages"],
            "chosen": [{"role": "assistant", "content": target(best)}],
            "rejected": [{"role": "assistant", "content": failed_text(worst)}],
            "question": best["question"],
        })
    return rows


def imitation_rows(records: Sequence[Record]) -> list[dict[str, Any]]:
    """Prompt-completion rows of the good answers alone (rejection sampling), one per question."""
    seen: set[str] = set()
    rows: list[dict[str, Any]] = []
    for r in sorted(records, key=lambda r: int(r.get("pass", 0))):
        t = target(r)
        if t and r["question"] not in seen:
            seen.add(r["question"])
            rows.append({"prompt": r["messages"], "completion": [{"role": "assistant", "content": t}]})
    return rows
