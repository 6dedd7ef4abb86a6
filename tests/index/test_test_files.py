"""Which files are tests, and which questions ask about them (`retrieval.test_bias`)."""

from __future__ import annotations

import pytest

from lorebase.index.test_files import asks_about_tests, is_test_path


@pytest.mark.parametrize("path", [
    "tests/test_intl/test_intl.py",  # sphinx
    "tests/roots/test-intl/glossary_terms.txt",  # a test's data
    "tests/functional/s/slots_checks.py",  # pylint's functional tests
    "testing/test_pytester.py",  # pytest's own
    "test/core/templaters/python_test.py",  # sqlfluff
    "src/pkg/test_helpers.py",
    "pkg/conftest.py",
    "pkg\\tests\\windows_style.py",
    "web/src/__tests__/render.tsx",  # Jest's folder
    "pkg/server/handler_test.go",
    "web/src/button.test.tsx",
    "web/src/api.spec.js",
    "lib/parser_spec.rb",
])
def test_tests_and_their_data_are_test_files(path: str) -> None:
    assert is_test_path(path)


@pytest.mark.parametrize("path", [
    "src/_pytest/pytester.py", "sphinx/builders/html.py",
    "pylint/checkers/classes/class_checker.py", "src/contest.py", "docs/testimonials.md", "latest.py", "", None,
    "docs/openapi.spec.yaml", "src/latest.go", "src/spec.py", "src/inspect.rb",
])
def test_implementation_is_not_a_test_file(path: str | None) -> None:
    assert not is_test_path(path)


def test_a_folder_named_testing_inside_a_package_counts_as_tests() -> None:
    # sphinx ships its test helpers as sphinx/testing/: they are test tooling, not the builder code
    assert is_test_path("sphinx/testing/util.py")


@pytest.mark.parametrize(("question", "about"), [
    ("What is the test function that validates glossary references?", True),
    ("Which fixture provides a temporary directory?", True),
    ("Where is conftest.py loaded?", True),
    ("How are unittest.TestCase classes collected?", True),
    ("How do the Tests mock the network?", True),
    ("How does the class checker validate __slots__ assignments?", False),
    ("What does pytest's assertion rewriting do to an assert statement?", False),  # "pytest" and "assert" are not tests
    ("What is the latest contest result?", False),
    ("What does the parser spec expect for an empty file?", True),
    ("Which options does the specification of the format list?", False),
])
def test_a_question_asks_about_tests_when_it_names_them(question: str, about: bool) -> None:
    assert asks_about_tests(question) is about
