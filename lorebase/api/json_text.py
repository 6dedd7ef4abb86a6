"""Request bodies must be Unicode text. JSON may spell a lone UTF-16 surrogate (``"\\ud800"``), which
Python decodes into a str that every later encoder refuses (SQLite, tokenizers, the JSON response),
so such a body is refused here, once for every route, with the field that holds it."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError


def lone_surrogate(value: Any) -> tuple[tuple[str | int, ...], str] | None:
    """(path, description) of the first string, key or value, holding a lone surrogate; else None.
    Iterative: a deeply nested body must not exhaust the interpreter's stack."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError as e:
                return path, f"lone UTF-16 surrogate U+{ord(v[e.start]):04X} at character {e.start}"
        elif isinstance(v, dict):
            # reversed onto the stack, so the first field is reported first
            for k, item in reversed(list(v.items())):
                stack.append(((*path, k), item))
                stack.append(((*path, k), k))
        elif isinstance(v, list):
            stack.extend(((*path, i), item) for i, item in reversed(list(enumerate(v))))
    return None


async def reject_lone_surrogates(request: Request) -> None:
    """A FastAPI dependency. FastAPI has decoded a JSON body before dependencies run; the decoded
    value is cached on the request, so this reads it again at no cost."""
    if not await request.body():
        return
    try:
        data = await request.json()
    except ValueError:  # not JSON: the route's own body parsing answers for it
        return
    found = lone_surrogate(data)
    if found is not None:
        path, what = found
        raise RequestValidationError([{
            "type": "string_unicode", "loc": ("body", *path), "input": None,
            "msg": f"{what} is not valid Unicode text (surrogates come only in high-low pairs)",
        }])
