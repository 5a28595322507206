"""The tree's shape, measured from the code (docs/architecture.md): no import cycles among
first-party modules, counting imports under `if TYPE_CHECKING:` and inside functions; a
`gateway/` grouped into packages by stage and concern."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from devices.vendors import sources

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "devices", "simulators", "dashboards")
MAX_TOP_LEVEL_MODULES = 12


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def imported(path: Path, name: str, known: dict[str, Path]) -> Iterator[str]:
    """Every first-party module `path` imports, wherever the import stands."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join([*parts, *([base] if base else [])])
            # `from package import module` names a module; `from module import name` does not
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            # Importing a.b.c runs the packages a and a.b first: those are imports too, except
            # of the importer's own packages, which are already running when it is imported.
            parts = target.split(".")
            for n in range(1, len(parts) + 1):
                module = ".".join(parts[:n])
                if module in known and module != name and not name.startswith(module + "."):
                    yield module


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_not_even_hidden_ones() -> None:
    known = modules()
    graph = {name: set(imported(path, name, known)) for name, path in known.items()}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_gateway_is_grouped_by_stage_and_concern() -> None:
    top = sorted(p.name for p in (ROOT / "gateway").glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_every_vendor_codec_has_its_tests() -> None:
    """docs/architecture.md, "A vendor codec": a test module of its own."""
    tests = {p.stem.removeprefix("test_") for p in (ROOT / "tests" / "devices").glob("test_*.py")}
    missing = [name for name in sources() if not any(t.startswith(name) for t in tests)]
    assert missing == []
