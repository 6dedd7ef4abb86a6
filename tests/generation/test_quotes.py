"""Quoting evidence: which sources an extractive answer quotes (the best and its close runners-up, in
retrieval order, three at most by default; with `one_per_file`, a code file once), and how a quote reads (code as a block under
its path and lines, keeping its indentation; speech as one quoted line)."""

from __future__ import annotations

from lorebase.citations import Citation
from lorebase.generation.evidence import Selection, Unit
from lorebase.generation.quotes import EXTRACTIVE_LEAD, extractive, quotable, quote, quoted_text


def _sel(label: str, source: str, kind: str, score: float, unit: Unit | None = None) -> Selection:
    if unit is None:
        unit = (Unit(f"line of {label}", start_line=1, end_line=3) if kind != "transcript"
                else Unit(f"said in {label}", start_time=0.0, end_time=5.0))
    cite = Citation(id=label, source_id=source, kind=kind, title=source, path=source if kind != "transcript" else None)
    return Selection(citation=cite, text=unit.text, units=(unit,), best=unit, score=score)


def test_a_file_is_quoted_once_and_the_next_file_takes_its_place() -> None:
    ranked = [_sel("S1", "a.py", "code", 0.50), _sel("S2", "a.py", "code", 0.48), _sel("S3", "b.py", "code", 0.45),
              _sel("S4", "c.py", "code", 0.44)]
    assert [s.citation.id for s in quotable(ranked, 0.2, most=2, one_per_file=True)] == ["S1", "S3"]
    # without it: the first strong ones, whatever their file
    assert [s.citation.id for s in quotable(ranked, 0.2, most=2)] == ["S1", "S2"]


def test_the_best_and_its_close_runners_up_are_quoted_in_retrieval_order_three_at_most() -> None:
    ranked = [_sel("S1", "a.py", "code", 0.30), _sel("S2", "b.md", "doc", 0.60), _sel("S3", "c.py", "code", 0.47),
              _sel("S4", "d.py", "code", 0.50), _sel("S5", "e.py", "code", 0.40)]
    # 0.6 of the best (0.60) is 0.36: S1 is too far behind; retrieval order decides among the rest
    assert [s.citation.id for s in quotable(ranked, 0.2)] == ["S2", "S3", "S4"]
    assert [s.citation.id for s in quotable(ranked, 0.2, most=4)] == ["S2", "S3", "S4", "S5"]
    # 0.8 of the best is 0.48: only the clear best and S4
    assert [s.citation.id for s in quotable(ranked, 0.2, share=0.8)] == ["S2", "S4"]
    assert quotable(ranked, 0.7) == []  # nothing reaches the bar


def test_a_meetings_passages_are_each_quoted() -> None:
    ranked = [_sel("S1", "meet", "transcript", 0.5), _sel("S2", "meet", "transcript", 0.5)]
    assert [s.citation.id for s in quotable(ranked, 0.2, one_per_file=True)] == ["S1", "S2"]


METHOD = """    def send(self, request):
        if request.body is None:
            return self.adapter.send(request)"""


def test_code_is_quoted_as_a_block_under_its_path_with_its_indentation() -> None:
    code = _sel("S1", "src/client.py", "code", 0.6, Unit(METHOD, start_line=40, end_line=42))
    said = _sel("S2", "meet", "transcript", 0.6, Unit("Ann: the adapter sends it", start_time=1.0, end_time=4.0))
    text, supports = extractive([said, code])
    assert text == (f"{EXTRACTIVE_LEAD}\n> Ann: the adapter sends it [S2]\n\n`src/client.py` lines 40-42 [S1]:\n"
                    "```python\ndef send(self, request):\n    if request.body is None:\n"
                    "        return self.adapter.send(request)\n```")
    # each quote is on record as supported by its own source, the code as it reads
    assert [(s.labels, s.supported) for s in supports] == [(["S2"], True), (["S1"], True)]
    assert supports[1].text.startswith("def send(self, request):\n    if")
    # trained on as the model would write it: the spoken line without its speaker, the block whole
    assert quoted_text(text) == ("the adapter sends it [S2]\n`src/client.py` lines 40-42 [S1]:\n```python\n"
                                 "def send(self, request):\n    if request.body is None:\n"
                                 "        return self.adapter.send(request)\n```")


def test_a_fence_in_the_code_cannot_close_the_quote() -> None:
    doc = 'EXAMPLE = """\n```python\nprint(1)\n```\n"""'
    text, _ = quote(_sel("S3", "docs/gen.py", "code", 0.5, Unit(doc, start_line=7, end_line=11)))
    lines = text.splitlines()
    assert lines[1] == "````python" and lines[-1] == "````" and "```python" in lines
    assert quoted_text(text) == text


def test_a_doc_line_stays_a_quoted_line() -> None:
    text, support = quote(_sel("S1", "README.md", "doc", 0.5, Unit("Install   it with pip.", start_line=3, end_line=3)))
    assert text == "> Install it with pip. [S1]" and support.text == "Install it with pip."


def test_a_code_quote_keeps_the_kept_lines_next_to_the_best_ones_but_not_those_after_a_gap() -> None:
    units = (Unit("def send(self, request):", 10, 10), Unit("    body = request.body", 11, 11),
             Unit("    return self.adapter.send(body)", 12, 12), Unit("def close(self):", 30, 30))
    sel = Selection(citation=Citation(id="S4", source_id="a", kind="code", title="a", path="src/a.py"),
                    text="", units=units, best=units[1], score=0.5)
    text, support = quote(sel)
    assert text.splitlines()[0] == "`src/a.py` lines 10-12 [S4]:"
    assert support.text == "def send(self, request):\n    body = request.body\n    return self.adapter.send(body)"
