"""Go to definition: the code names a question writes, and the chunks that define them (real store, real bm25s)."""

from __future__ import annotations

import numpy as np
import pytest

from lorebase.index.bm25 import Bm25Index
from lorebase.index.definitions import DefinitionIndex, code_names, defined_name
from lorebase.store import Store
from tests.index.corpus import add_source


@pytest.mark.parametrize(("question", "names"), [
    ("What does `pytester.runpytest_subprocess()` return?", ["pytester", "runpytest_subprocess"]),
    ("Why does TestAccesses cache the Source in setup_class?", ["testaccesses", "setup_class"]),
    ("Where is run(args) called, and what is os.sep?", ["run", "os", "sep"]),
    ("How does parseHTTPHeader treat `raw line`?", ["parsehttpheader", "raw", "line"]),
    ("Why is __init__ slow?", ["__init__"]),
    # prose: capitalised words, abbreviations and one-letter names name nothing
    ("How is the Source object cached, e.g. for a Fixture?", []),
    ("What does the `x` in f(x) mean?", []),
])
def test_only_names_written_as_code_count(question: str, names: list[str]) -> None:
    assert code_names(question) == names


def test_a_chunk_defines_the_last_part_of_its_symbol_unless_it_is_a_module() -> None:
    assert defined_name("code", {"symbol": "Pytester.runpytest_subprocess", "symbol_kind": "method"}) == "runpytest_subprocess"
    assert defined_name("code", {"symbol": "TestAccesses", "symbol_kind": "class"}) == "testaccesses"
    assert defined_name("code", {"symbol": "src._pytest.pytester", "symbol_kind": "module"}) is None
    assert defined_name("doc", {"symbol": "Pytester"}) is None and defined_name("code", None) is None


def test_a_name_defined_in_n_files_weighs_one_nth_and_a_chunk_keeps_its_best_name() -> None:
    # (chunk, source, name): "run" in two files; "pytester" in one; chunk 4 defines "run" in file s10 again
    index = DefinitionIndex([(1, "s10", "run"), (2, "s20", "run"), (3, "s10", "pytester"), (4, "s10", "run"), (5, "s30", None)])
    assert len(index) == 2
    assert index.weights(["run"]) == pytest.approx({1: 0.5, 2: 0.5, 4: 0.5})
    assert index.weights(["run", "pytester"]) == pytest.approx({1: 0.5, 2: 0.5, 3: 1.0, 4: 0.5})
    # Within the allowed chunks (one repository) "run" is defined in one file only.
    assert index.weights(["run"], np.asarray([1, 4])) == pytest.approx({1: 1.0, 4: 1.0})
    assert index.weights(["zebra"]) == {} and index.weights([]) == {}


def test_the_bm25_index_looks_up_the_definitions_a_question_names(store: Store) -> None:
    method = {"text": "    def runpytest_subprocess(self, *args):\n        return self.run(*args)",
              "meta": {"symbol": "Pytester.runpytest_subprocess", "symbol_kind": "method"}}
    module = {"text": "import subprocess", "meta": {"symbol": "pkg.pytester", "symbol_kind": "module"}}
    src = add_source(store, "code:o/r:pkg/pytester.py", [module, method], kind="code", repo="o/r", path="pkg/pytester.py")
    caller = add_source(store, "code:o/r:tests/test_it.py", [{"text": "def test_it(pytester):\n    pytester.runpytest_subprocess()",
                                                              "meta": {"symbol": "test_it", "symbol_kind": "function"}}],
                        kind="code", repo="o/r", path="tests/test_it.py")
    bm25 = Bm25Index(store)
    assert bm25.definitions("What does pytester.runpytest_subprocess() return?") == {src[1]: 1.0}
    assert bm25.definitions("What does it return?") == {}
    assert bm25.definitions("What does test_it check?", np.asarray(caller)) == {caller[0]: 1.0}
    assert bm25.definitions("What does test_it check?", np.asarray(src)) == {}
    # A new definition of the same name in another file halves both (the index follows the store).
    other = add_source(store, "code:o/r:pkg/legacy.py", [{"text": "def runpytest_subprocess(self): ...",
                                                          "meta": {"symbol": "Testdir.runpytest_subprocess", "symbol_kind": "method"}}],
                       kind="code", repo="o/r", path="pkg/legacy.py")
    assert bm25.definitions("`runpytest_subprocess`") == pytest.approx({src[1]: 0.5, other[0]: 0.5})
