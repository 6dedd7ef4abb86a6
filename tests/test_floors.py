"""The floors of lorebase, checked from the source: a floor imports only floors below it, and no
modules or packages import each other in a circle.

From the ground up: the store and settings (with the small root modules they share); ``ingest`` and
``index``; ``generation``; ``finetune``, ``eval`` and the feedback review; ``services`` (builds the
floors below once); ``scheduler``; and the faces ``api``, ``ui`` and ``cli``. Imports are read with
``ast`` from every module, lazy ones inside functions and ``TYPE_CHECKING`` blocks included: a type
hint that reaches up a floor is still a dependency on it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lorebase"

STORE, INGEST, GENERATION, TUNING, SERVICES, SCHEDULER, FACES = range(7)
FLOOR_NAMES = ["store+settings", "ingest+index", "generation", "finetune+eval", "services", "scheduler", "faces"]

# Longest prefix wins. A module that matches none fails test_every_module_has_a_floor: give it one here.
FLOORS: dict[str, int] = {
    "lorebase": STORE,  # the package root: __version__ only
    "lorebase.store": STORE,
    "lorebase.settings": STORE,
    "lorebase.errors": STORE,
    "lorebase.citations": STORE,
    "lorebase.verdict": STORE,
    "lorebase.readiness": STORE,
    "lorebase.generator_profiles": STORE,
    "lorebase.offline_models": STORE,
    "lorebase.cpu_budget": STORE,
    "lorebase.progress": STORE,  # a bar or a log line for long work, used by ingest and index
    "lorebase.server_binding": STORE,  # is_loopback, beside the server settings
    "lorebase.docs_table": STORE,
    "lorebase.ingest": INGEST,
    "lorebase.index": INGEST,
    "lorebase.source_view": INGEST,  # reads stored sources and their media for the faces
    "lorebase.generation": GENERATION,
    "lorebase.finetune": TUNING,
    "lorebase.eval": TUNING,
    "lorebase.feedback": TUNING,  # the feedback store, review and harvest (module or package)
    "lorebase.feedback_review": TUNING,
    "lorebase.services": SERVICES,
    "lorebase.scheduler": SCHEDULER,
    "lorebase.api": FACES,
    "lorebase.ui": FACES,
    "lorebase.cli": FACES,
    "lorebase.__main__": FACES,
}

# Known edges that break the rules, each (importer, imported) by module. An entry that no longer occurs
# fails test_allow_list_is_current, so the list can only shrink; issue 17's `conv` branch emptied it.
ALLOWED: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, modules: Iterable[str]) -> set[str]:
    """The lorebase modules ``name`` imports anywhere in its body. ``from a.b import c`` names the module
    ``a.b.c`` when there is one, else ``a.b`` itself."""
    known = set(modules)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                child = f"{target}.{alias.name}"
                found.add(child if child in known else target)
    return {t for t in found if t == "lorebase" or t.startswith("lorebase.")}


def floor_of(module: str) -> int | None:
    best = None
    for prefix in FLOORS:
        if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best)):
            best = prefix
    return None if best is None else FLOORS[best]


def graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imports_of(name, path, modules) - {name} for name, path in modules.items()}


def edges() -> Iterable[tuple[str, str]]:
    for source, targets in graph().items():
        for target in sorted(targets):
            yield source, target


def unit(module: str) -> str:
    """The package a module belongs to for the package-level circle check: ``lorebase.<sub>`` for
    subpackages, each root module on its own."""
    parts = module.split(".")
    return ".".join(parts[:2])


def circles(nodes: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(nodes.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(nodes.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def violations(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """Every (importer, imported, why) among ``pairs`` that breaks a floor rule."""
    found = []
    for source, target in pairs:
        low, high = floor_of(source), floor_of(target)
        if low is None or high is None:
            continue  # reported by test_every_module_has_a_floor
        if high > low:
            found.append((source, target, f"{FLOOR_NAMES[low]} imports {FLOOR_NAMES[high]}"))
        elif unit(source) == "lorebase.ui" and unit(target) == "lorebase.api":
            found.append((source, target, "the UI imports the API: two faces over the same services"))
        elif unit(source) == "lorebase.api" and unit(target) == "lorebase.ui" and source != "lorebase.api.app":
            found.append((source, target, "the API imports the UI beyond mounting it in api/app.py"))
    return found


def test_every_module_has_a_floor() -> None:
    missing = [name for name in all_modules() if floor_of(name) is None]
    assert not missing, f"modules with no floor (add them to FLOORS in {__file__}): {missing}"


def test_no_floor_imports_a_higher_one() -> None:
    broken = [v for v in violations(edges()) if (v[0], v[1]) not in ALLOWED]
    assert not broken, "imports that run back up:\n" + "\n".join(f"  {s} -> {t}: {why}" for s, t, why in broken)


def test_ingest_and_index_know_nothing_of_generation_or_the_faces() -> None:
    banned = ("lorebase.generation", "lorebase.api", "lorebase.ui", "lorebase.cli")
    broken = [
        (s, t)
        for s, t in edges()
        if unit(s) in ("lorebase.ingest", "lorebase.index") and unit(t) in banned and (s, t) not in ALLOWED
    ]
    assert not broken, broken


def test_nothing_below_the_faces_imports_api_or_ui() -> None:
    faces = ("lorebase.api", "lorebase.ui", "lorebase.cli", "lorebase.__main__")
    broken = [
        (s, t)
        for s, t in edges()
        if unit(s) not in faces and unit(t) in ("lorebase.api", "lorebase.ui") and (s, t) not in ALLOWED
    ]
    assert not broken, broken


def test_no_circles_between_packages() -> None:
    units: dict[str, set[str]] = defaultdict(set)
    for source, target in edges():
        if (source, target) not in ALLOWED and unit(source) != unit(target):
            units[unit(source)].add(unit(target))
    assert circles(units) == []


def test_no_circles_between_modules() -> None:
    kept = {s: {t for t in ts if (s, t) not in ALLOWED} for s, ts in graph().items()}
    assert circles(kept) == []


def test_allow_list_is_current() -> None:
    """Each allowed edge must still exist and still break a rule; once fixed, it leaves the list."""
    present = set(edges())
    breaking = {(s, t) for s, t, _ in violations(present)} | {
        (s, t) for component in circles(graph()) for s in component for t in graph()[s] if t in component
    }
    stale = sorted(edge for edge in ALLOWED if edge not in present or edge not in breaking)
    assert not stale, f"remove from ALLOWED, these no longer break a rule: {stale}"


# The checker itself, on small graphs, so a quiet pass above means something.
def test_circles_finds_a_loop_and_ignores_a_chain() -> None:
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


@pytest.mark.parametrize(
    ("source", "body", "expected"),
    [
        ("lorebase.index.sync", "def f():\n    from lorebase.generation import answer\n", "lorebase.generation.answer"),
        ("lorebase.ingest.service", "from ..api import security\n", "lorebase.api.security"),
        ("lorebase.ingest.service", "import lorebase.ui.mount as m\n", "lorebase.ui.mount"),
        ("lorebase.ingest.service", "from . import records\n", "lorebase.ingest.records"),
    ],
)
def test_imports_of_reads_lazy_relative_and_plain_imports(tmp_path: Path, source: str, body: str, expected: str) -> None:
    path = tmp_path / "module.py"
    path.write_text(body, encoding="utf-8")
    assert expected in imports_of(source, path, all_modules())


def test_violations_flags_upward_and_face_to_face_imports_only() -> None:
    found = violations(
        [
            ("lorebase.index.sync", "lorebase.generation.answer"),
            ("lorebase.ui.mount", "lorebase.api.security"),
            ("lorebase.eval.runner", "lorebase.services"),
            ("lorebase.api.app", "lorebase.ui.mount"),
            ("lorebase.api.routes.chat", "lorebase.services"),
            ("lorebase.generation.answer", "lorebase.index.search"),
        ]
    )
    assert [(s, t) for s, t, _ in found] == [
        ("lorebase.index.sync", "lorebase.generation.answer"),
        ("lorebase.ui.mount", "lorebase.api.security"),
        ("lorebase.eval.runner", "lorebase.services"),
    ]
