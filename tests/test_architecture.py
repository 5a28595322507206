"""The tree's shape, measured from the code (docs/architecture.md): no import cycles among
first-party modules, counting imports under `if TYPE_CHECKING:` and inside functions; a
`gateway/` grouped into packages by stage and concern."""

from __future__ import annotations

import ast
import subprocess
import sys
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


# Routes and jobs take the parts they use (gateway/api/deps.py), not the application object. What is
# left: the demo's simulation, a `Companion` that `create_app` starts with the gateway, and
# `create_app`'s parameter of those companions.
MAX_GATEWAY_PARAMETERS = 5
APPLICATION_OBJECT = "Gateway"


def _names(node: ast.AST) -> set[str]:
    """Every name an annotation mentions, inside quoted annotations too."""
    found = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            found.add(n.id)
        elif isinstance(n, ast.Attribute):
            found.add(n.attr)
        elif isinstance(n, ast.Constant) and isinstance(n.value, str):
            try:
                found |= _names(ast.parse(n.value, mode="eval"))
            except SyntaxError:
                continue
    return found


def _aliases(trees: dict[str, ast.Module]) -> set[str]:
    """`Gateway` and every module-level name whose value mentions it (`GatewayDep =
    Annotated[Gateway, …]`, `Companion = Callable[[Gateway], …]`), or that imports one under
    another name, to a fixed point."""
    aliases = {APPLICATION_OBJECT}
    while True:
        more = set(aliases)
        for tree in trees.values():
            for node in tree.body:
                if isinstance(node, ast.Assign) and _names(node.value) & aliases:
                    more |= {t.id for t in node.targets if isinstance(t, ast.Name)}
                elif (isinstance(node, ast.AnnAssign) and node.value is not None and isinstance(node.target, ast.Name)
                      and _names(node.value) & aliases):
                    more.add(node.target.id)
                elif isinstance(node, ast.ImportFrom):
                    more |= {a.asname for a in node.names if a.asname and a.name in aliases}
        if more == aliases:
            return aliases
        aliases = more


def gateway_parameters(sources: dict[str, str]) -> list[str]:
    """`module:function(parameter)` for each parameter annotated with the application object
    or an alias of it."""
    trees = {name: ast.parse(text) for name, text in sources.items()}
    aliases = _aliases(trees)
    found = []
    for name, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            a = node.args
            params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *(p for p in (a.vararg, a.kwarg) if p is not None)]
            found += [f"{name}:{node.name}({p.arg})" for p in params
                      if p.annotation is not None and _names(p.annotation) & aliases]
    return sorted(found)


def test_few_functions_take_the_whole_gateway() -> None:
    sources = {name: path.read_text(encoding="utf-8") for name, path in modules().items()}
    found = gateway_parameters(sources)
    assert len(found) <= MAX_GATEWAY_PARAMETERS, found


def test_the_gateway_parameter_finder_sees_through_aliases() -> None:
    sources = {
        "app": "class Gateway: ...\nDep = Annotated[Gateway, Depends(f)]\nHook = Callable[[Gateway], None]\n"
               "def make(after: Sequence[Hook]) -> None: ...\ndef f(request: Request) -> Gateway: ...\n",
        "routes": "from app import Dep as G\nasync def a(gw: G, n: int) -> None: ...\n"
                  "def b(*, gw: 'Gateway | None' = None) -> None:\n    def inner(g: Dep) -> None: ...\n",
    }
    assert gateway_parameters(sources) == ["app:make(after)", "routes:a(gw)", "routes:b(gw)", "routes:inner(g)"]


def test_only_the_dependencies_read_the_gateway_from_the_app() -> None:
    """gateway/api/deps.py hands out the gateway's parts; no other route module reaches for
    the whole of it."""
    readers = sorted(path.name for path in (ROOT / "gateway" / "api").glob("*.py")
                     if "state.gateway" in path.read_text(encoding="utf-8"))
    assert readers == ["deps.py"]


def test_a_gateway_imports_the_libraries_of_optional_parts_only_where_it_has_them() -> None:
    """The InfluxDB client with aiohttp (20 MB and a fifth of a second of every start),
    cryptography's Rust core (6 MB, for the energy platform's AES) and pymodbus (3 MB) are
    imported by the sink or the poller that needs them, when a site has it."""
    code = ("import sys, gateway.cli, gateway.runtime\n"
            "print(sorted(m for m in ('influxdb_client', 'aiohttp', 'cryptography', 'pymodbus') if m in sys.modules))")
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert imported.stdout.strip() == "[]"
