"""The sentences of a long transcript worth summarising, picked before the model reads it.

A one-hour meeting is 10,000 words of talk, most of it turn-taking ("OK, we're on", "Check one").
Given all of it in batches, a small model copies the first lines it sees or loops on the digits
read out at the end. So each passage is cut to the few sentences that carry the meeting's recurring
subjects: a sentence scores by how often the whole meeting uses its words (the SumBasic idea: the
subjects of a meeting are the content words it keeps coming back to); conversational words do not
count, a sentence said twice in a passage counts once, and short sentences come only after long ones. What the model is shown is still the meeting's own words, in
order, each under the time of its passage.

The same measure chooses a long summary's points (`salient_points`): the checked bullets of every
part compete for a word budget, so the summary covers the whole meeting rather than what a small
model's merge step kept (usually the first part's bullets, or none).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

from lorebase.generation.grounding import content_words, split_sentences

# Words every conversation is full of; they say nothing about what this one is about.
_TALK_WORDS = frozenset(content_words(
    "yeah yep okay ok right think know mean like guess well gonna wanna kind sort thing things stuff actually "
    "really sure oh alright good great fine yes no one two three get got go going goes say says said saying see look "
    "want let lot bit maybe probably something anything everything way little mm hmm uh um"))
_SPEAKER = re.compile(r"^([A-Z][\w .'-]{0,40}:\s+)")
_BRACKETS = re.compile(r"\[[^\]\n]*\]")
_QUOTE = re.compile(r"^- (.*?)\s*(\[[^\]\n]+\])$")  # "- Speaker: words [12:30]"
MIN_WORDS = 6  # content words a sentence needs to be worth summarising


def salient_passages(passages: Sequence[str], keep: int) -> list[str]:
    """Each passage (lines of "Speaker: words") cut to its ``keep`` sentences whose words the whole
    transcript uses most, in their order, each with its speaker; "" for a passage with none worth
    keeping. ``keep`` 0 returns the passages unchanged."""
    if keep <= 0:
        return list(passages)
    split = [_sentences(p) for p in passages]
    counts: Counter[str] = Counter(w for sents in split for _, _, words in sents for w in set(words))
    total = sum(counts.values()) or 1
    out = []
    for sents in split:
        seen: set[str] = set()
        scored = []
        for i, (_, sent, words) in enumerate(sents):
            distinct = set(words)
            if not distinct or sent.lower() in seen:  # "Check one. Check one." once
                continue
            seen.add(sent.lower())
            # short sentences only when a passage has too few long ones
            scored.append((len(distinct) >= MIN_WORDS, sum(counts[w] for w in distinct) / (len(distinct) * total), i))
        best = sorted(i for *_, i in sorted(scored, reverse=True)[:keep])
        out.append("\n".join(f"{sents[i][0]}{sents[i][1]}" for i in best))
    return out


def opening(quotes: Sequence[str], n: int) -> list[str]:
    """The first ``n`` sentences of ``quotes`` (the sentences a summary reads, as bullets "- Speaker:
    words [mm:ss]", in order: for a long transcript, each passage's salient ones) that say something
    (``MIN_WORDS`` content words). A meeting opens with what it is about, and QMSum's reference
    summaries open the same way."""
    out: list[str] = []
    for q in quotes:
        m = _QUOTE.match(q)
        if m is None:
            continue
        for label, sent, words in _sentences(m.group(1)):
            if len(out) < n and len(set(words)) >= MIN_WORDS:
                out.append(f"- {label}{sent} {m.group(2)}")
        if len(out) >= n:
            break
    return out


def salient_points(points: Sequence[str], texts: Sequence[str], words: int, quotes: Sequence[str] = (),
                   position: Callable[[str], float] | None = None, lead: Sequence[str] = ()) -> list[str]:
    """Up to about ``words`` words of ``points`` (a summary's bullets), those about what ``texts``
    (the parts summarised) keep coming back to. When the points run out first, ``quotes`` (the
    parts' own sentences as bullets) fill the rest the same way. ``lead`` bullets (`opening`) are
    taken first and count against ``words``. Returned in the order of ``position`` (a bullet's
    place in the source; default: lead, points, then quotes, as given).
    SumBasic: a bullet scores by the mean frequency of its words; once one is taken its words count
    for less (their frequency squared), so the next bullet says something else."""
    # by passage, without the speaker labels: a name that speaks in every passage is not a subject
    counts: Counter[str] = Counter(w for t in texts for w in {w for *_, ws in _sentences(t) for w in ws})
    total = sum(counts.values()) or 1
    weight = {w: c / total for w, c in counts.items()}
    pool = [*lead, *points, *quotes]
    vocab = [{w for *_, ws in _sentences(_BRACKETS.sub("", p)) for w in ws} for p in pool]  # not the [12:30]
    chosen = list(range(len(lead)))
    used = sum(len(b.split()) for b in lead)
    for w in {w for i in chosen for w in vocab[i]}:
        weight[w] = weight.get(w, 0.0) ** 2
    start = len(lead)
    for group in (range(start, start + len(points)), range(start + len(points), len(pool))):
        left = [i for i in group if vocab[i]]
        while left and used < words:
            best = max(left, key=lambda i: (sum(weight.get(w, 0.0) for w in vocab[i]) / len(vocab[i]), -i))
            left.remove(best)
            if any(len(vocab[best] & vocab[j]) >= 0.7 * len(vocab[best]) for j in chosen):
                continue  # the same point from another part
            chosen.append(best)
            used += len(pool[best].split())
            for w in vocab[best]:
                weight[w] = weight.get(w, 0.0) ** 2
    return [pool[i] for i in sorted(chosen, key=lambda i: (position(pool[i]) if position else 0.0, i))]


def _sentences(passage: str) -> list[tuple[str, str, list[str]]]:
    """(speaker label with its colon, sentence, its content words but conversational ones)."""
    out = []
    for line in passage.split("\n"):
        m = _SPEAKER.match(line)
        label, body = (m.group(1), line[m.end():]) if m else ("", line)
        for sent in split_sentences(body):
            out.append((label, sent, [w for w in content_words(sent) if w not in _TALK_WORDS]))
    return out
