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

_TEST_DIRS = frozenset({"test", "tests", "testing"})
_ASKS_ABOUT_TESTS = re.compile(r"\b(?:test|fixture|conftest|unittest|mock)", re.IGNORECASE)


def is_test_path(path: str | None) -> bool:
    """A file under a ``test``, ``tests`` or ``testing`` folder, or named ``test_*``, ``*_test.py``
    or ``conftest.py``: tests and the data they read (pylint's ``tests/functional/...``, sphinx's
    ``tests/roots/...``)."""
    if not path:
        return False
    p = PurePosixPath(path.replace("\\", "/"))
    name = p.name
    return (any(part in _TEST_DIRS for part in p.parts[:-1]) or name.startswith("test_")
            or name.endswith("_test.py") or name == "conftest.py")


def asks_about_tests(question: str) -> bool:
    """Does the question name tests (test, tests, testing, fixture, conftest, unittest, mock)?"""
    return _ASKS_ABOUT_TESTS.search(question) is not None
