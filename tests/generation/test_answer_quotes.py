"""Which sources an extractive answer quotes (`answer.quotable`): the clear best, in retrieval
order, two at most; with `one_per_file`, a code file once."""

from __future__ import annotations

from lorebase.citations import Citation
from lorebase.generation.answer import quotable
from lorebase.generation.evidence import Selection, Unit


def _sel(label: str, source: str, kind: str, score: float) -> Selection:
    unit = Unit(f"line of {label}", start_line=1, end_line=3) if kind != "transcript" else Unit(f"said in {label}", start_time=0.0, end_time=5.0)
    cite = Citation(id=label, source_id=source, kind=kind, title=source, path=source if kind != "transcript" else None)
    return Selection(citation=cite, text=unit.text, units=(unit,), best=unit, score=score)


def test_a_file_is_quoted_once_and_the_next_file_takes_its_place() -> None:
    ranked = [_sel("S1", "a.py", "code", 0.50), _sel("S2", "a.py", "code", 0.48), _sel("S3", "b.py", "code", 0.45),
              _sel("S4", "c.py", "code", 0.44)]
    assert [s.citation.id for s in quotable(ranked, 0.2, one_per_file=True)] == ["S1", "S3"]
    # the default: the first two strong ones, whatever their file
    assert [s.citation.id for s in quotable(ranked, 0.2)] == ["S1", "S2"]


def test_only_lines_close_to_the_best_and_above_the_bar_are_quoted() -> None:
    ranked = [_sel("S1", "a.py", "code", 0.30), _sel("S2", "b.md", "doc", 0.60), _sel("S3", "c.py", "code", 0.47),
              _sel("S4", "d.py", "code", 0.50)]
    # 0.8 of the best (0.60) is 0.48: S1 and S3 are runners-up; retrieval order decides among the rest
    assert [s.citation.id for s in quotable(ranked, 0.2)] == ["S2", "S4"]
    assert quotable(ranked, 0.7) == []  # nothing reaches the bar


def test_a_meetings_passages_are_each_quoted() -> None:
    ranked = [_sel("S1", "meet", "transcript", 0.5), _sel("S2", "meet", "transcript", 0.5)]
    assert [s.citation.id for s in quotable(ranked, 0.2, one_per_file=True)] == ["S1", "S2"]
