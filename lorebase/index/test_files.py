"""Test files, and questions about them.

A question about how a project does something is answered by its implementation. Its tests call
the same functions in the same words, often more times than the implementation names them, so
they can outrank it. On pylint, whose ~1,800 small functional-test files describe every checker,
a test file ranked first for 26 of the 43 held-out questions whose first file was wrong. A
question that asks about tests says so ("the test function that ...", "which fixture ..."), and
then they stay where they rank (`retrieval.test_bias`).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

_TEST_DIRS = frozenset({"test", "tests", "testing", "__tests__"})
# test files by name: Python's test_x.py / x_test.py and conftest.py, Go's x_test.go, JavaScript's and
# TypeScript's x.test.ts / x.spec.ts, Ruby's x_spec.rb
_TEST_NAME = re.compile(r"^(?:test_.*|.*_test\.(?:py|go)|.*\.(?:test|spec)\.[cm]?[jt]sx?|.*_spec\.rb|conftest\.py)$")
_ASKS_ABOUT_TESTS = re.compile(r"\b(?:test|fixture|conftest|unittest|mock|spec\b|specs\b)", re.IGNORECASE)


def is_test_path(path: str | None) -> bool:
    """A file under a ``test``, ``tests``, ``testing`` or ``__tests__`` folder, or named as tests are
    (``test_*``, ``*_test.py``, ``conftest.py``, ``*_test.go``, ``*.test.ts``, ``*.spec.js``,
    ``*_spec.rb``): tests and the data they read (pylint's ``tests/functional/...``, sphinx's
    ``tests/roots/...``)."""
    if not path:
        return False
    p = PurePosixPath(path.replace("\\", "/"))
    return any(part in _TEST_DIRS for part in p.parts[:-1]) or _TEST_NAME.match(p.name) is not None


def asks_about_tests(question: str) -> bool:
    """Does the question name tests (test, tests, testing, fixture, conftest, unittest, mock, spec)?"""
    return _ASKS_ABOUT_TESTS.search(question) is not None
