"""The package structure, read from the code: imports point down the flow, no cycles, one owner per concern.

Every module of ``onnxforge`` (and the ``exporters`` package) is parsed with ``ast``; every import counts,
at module level or inside a function (a function-level import that hides a cycle is still the cycle), except
those under ``if TYPE_CHECKING:`` (annotations only: nothing runs). Each top-level module or package of
``onnxforge`` is a *unit* with a level (``LEVELS``, lowest first; ``ARCHITECTURE.md`` draws the same flow).
The rules:

(a) an import never points to a unit of a higher level;
(b) the units do not import each other in a cycle (units of one level may use each other one way);
(c) only ``onnxforge/graph/`` calls ``onnx.helper`` / ``onnx.numpy_helper``;
(d) only ``onnxforge/graph/contract.py`` spells a ``metadata_props`` key (``"onnxforge.<key>"``);
(e) no module over ``MAX_LINES`` lines, except the short list in ``LONG_MODULES`` (one concern each).

Run as a script (``python tests/test_structure.py``) to print the whole import graph's violations.
"""
from __future__ import annotations

import ast
import functools
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("onnxforge", "exporters")

#: The flow, lowest level first. A unit is ``onnxforge.<first name>`` (``__init__`` is the package root);
#: ``exporters`` (a sibling package) sits above everything.
LEVELS: list[tuple[str, tuple[str, ...]]] = [
    ("graph", ("_version", "graph")),
    ("autodiff", ("autodiff",)),
    # The Keras objects, in the order they build on each other. eager_tensor is the array type eager ops
    # return (it imports nothing), not the executor (eager/). Losses are written on graph values directly;
    # ops.nn's crossentropies call them.
    ("keras state", ("trace_state", "custom_objects", "keras_objects", "backend_config", "dtype_policies", "variables", "eager_tensor",
                     "initializer_values", "initializers", "regularizers", "constraints", "tracing", "metric_tracing",
                     "keras_masks")),
    ("losses", ("losses",)),
    ("ops", ("ops",)),
    # keras.quantizers: functions written with ops, configs the quantized layers read.
    ("quantizers", ("quantizers",)),
    ("activations", ("activations",)),
    ("layers", ("layers",)),
    ("metrics, optimizers", ("metrics", "optimizers")),
    ("compiler", ("compiler",)),
    ("runtime", ("runtime",)),
    ("eager", ("eager", "gradient_tape")),
    # The callbacks sit with the training loop that drives them.
    ("trainer", ("callbacks", "trainer", "distribute")),
    ("models", ("models",)),
    ("saving", ("saving",)),
    ("serving", ("serving",)),
    ("surface", ("keras", "cli", "datasets", "utils", "preprocessing", "tf_compat", "applications", "wrappers",
                 "distillation", "__init__")),
    ("exporters", ("exporters",)),
]
LEVEL_OF = {unit: i for i, (_, units) in enumerate(LEVELS) for unit in units}

MAX_LINES = 500
#: Modules allowed over ``MAX_LINES``: one concern each, said here.
LONG_MODULES: dict[str, str] = {}

#: Violations not fixed yet, one line each saying why; the test fails on any other (and on a listed one
#: that is gone, so the list only shrinks).
KNOWN_VIOLATIONS: dict[str, str] = {
}


# ------------------------------------------------------------------------------------------------ reading
def _modules() -> dict[str, pathlib.Path]:
    """``{dotted module name: path}`` of every module of the packages."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES.get(name, pathlib.Path()).name == "__init__.py"


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Line numbers inside ``if TYPE_CHECKING:`` blocks."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(name: str, tree: ast.AST) -> list[tuple[str, int]]:
    """``[(imported module, line)]`` of one module: relative imports resolved, ``from pkg import sub``
    resolved to the submodule when ``sub`` is one."""
    skip = _type_checking_lines(tree)
    package = name if _is_package(name) else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                out.append((sub if sub in MODULES else module, node.lineno))
    return [(m, line) for m, line in out if m.split(".")[0] in PACKAGES]


def _unit(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "exporters":
        return "exporters"
    return parts[1] if len(parts) > 1 else "__init__"


@functools.cache   # parsed on first use, not at collection: every xdist worker imports this file
def _trees() -> dict[str, ast.AST]:
    return {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


# ------------------------------------------------------------------------------------------------ checks
@functools.cache   # each rule's test and test_known_violations_are_still_there read it
def upward_imports() -> tuple[str, ...]:
    """Rule (a): ``"a.b -> c.d (line n): unit level -> unit level"`` for every import that points up."""
    out = []
    for name, tree in _trees().items():
        src = _unit(name)
        for target, line in _imports(name, tree):
            dst = _unit(target)
            if LEVEL_OF[dst] > LEVEL_OF[src]:
                out.append(f"up: {name} -> {target} (line {line}): {src} [{LEVELS[LEVEL_OF[src]][0]}] -> "
                           f"{dst} [{LEVELS[LEVEL_OF[dst]][0]}]")
    return tuple(out)


def unit_graph() -> dict[str, dict[str, list[str]]]:
    """``{unit: {imported unit: ["module:line", ...]}}``, upward imports left out (rule (a) reports those,
    and any cycle through units of different levels holds one): what is left are the uses within a level."""
    graph: dict[str, dict[str, list[str]]] = {}
    for name, tree in _trees().items():
        src = _unit(name)
        for target, line in _imports(name, tree):
            dst = _unit(target)
            if dst != src and LEVEL_OF[dst] <= LEVEL_OF[src]:
                graph.setdefault(src, {}).setdefault(dst, []).append(f"{name}:{line}")
    return graph


def _strongly_connected(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


@functools.cache
def unit_cycles() -> tuple[str, ...]:
    """Rule (b): one line per import edge inside a cycle of units: ``"cycle: a -> b (module:line, ...)"``."""
    graph = unit_graph()
    out = []
    for comp in _strongly_connected(graph):
        for src in comp:
            for dst in comp:
                if dst in graph.get(src, {}):
                    out.append(f"cycle: {src} -> {dst} ({', '.join(sorted(graph[src][dst]))})")
    return tuple(out)


_HELPER = re.compile(r"\b(onnx\.helper|onnx\.numpy_helper|from onnx import [^\n]*\b(helper|numpy_helper)\b)")


@functools.cache
def helper_calls() -> tuple[str, ...]:
    """Rule (c): every use of ``onnx.helper`` / ``onnx.numpy_helper`` outside ``onnxforge/graph/``."""
    out = []
    for name, tree in _trees().items():
        if name.startswith("onnxforge.graph"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "onnx" and \
                    {a.name for a in node.names} & {"helper", "numpy_helper"}:
                out.append(f"helper: {name} (line {node.lineno}): from onnx import helper")
            elif isinstance(node, ast.ImportFrom) and node.module in ("onnx.helper", "onnx.numpy_helper"):
                out.append(f"helper: {name} (line {node.lineno}): from {node.module} import ...")
            elif isinstance(node, ast.Import) and {a.name for a in node.names} & {"onnx.helper", "onnx.numpy_helper"}:
                out.append(f"helper: {name} (line {node.lineno}): import onnx.helper")
            elif isinstance(node, ast.Attribute) and node.attr in ("helper", "numpy_helper") and \
                    isinstance(node.value, ast.Name) and node.value.id == "onnx":
                out.append(f"helper: {name} (line {node.lineno}): onnx.{node.attr}")
    return tuple(out)


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


# A metadata key: "onnxforge." then a lower-case word, alone in the string (module paths such as
# "onnxforge.ops" are told apart by being importable names; prose never matches the whole string).
_KEY = re.compile(r"onnxforge\.[a-z_]+(/\d+)?\n?")


@functools.cache
def metadata_keys() -> tuple[str, ...]:
    """Rule (d): a string constant (docstrings aside) that is an ``onnxforge.<key>`` outside contract.py."""
    out = []
    for name, tree in _trees().items():
        if name == "onnxforge.graph.contract":
            continue
        docs = _docstring_nodes(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant) or id(node) in docs:
                continue
            value = node.value.decode("latin-1") if isinstance(node.value, bytes) else node.value
            if isinstance(value, str) and _KEY.fullmatch(value) and value.rstrip("\n").split("/")[0] not in MODULES:
                out.append(f"key: {name} (line {node.lineno}): {value!r}")
    return tuple(out)


@functools.cache
def long_modules() -> tuple[str, ...]:
    """Rule (e): modules over ``MAX_LINES`` lines that are not in ``LONG_MODULES``."""
    out = []
    for name, path in MODULES.items():
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES and name not in LONG_MODULES:
            out.append(f"long: {name} ({lines} lines)")
    return tuple(out)


def all_violations() -> list[str]:
    return [*upward_imports(), *unit_cycles(), *helper_calls(), *metadata_keys(), *long_modules()]


# ------------------------------------------------------------------------------------------------- tests
def _key(violation: str) -> str:
    """The part of a violation that names it without line numbers (lines move as code is edited)."""
    return re.sub(r"\s*\((line \d+|\d+ lines|[^)]*:\d+[^)]*)\)", "", violation)


def _check(found: tuple[str, ...]) -> None:
    new = sorted({_key(v) for v in found} - set(KNOWN_VIOLATIONS))
    assert not new, "\n".join(["New structure violations (see ARCHITECTURE.md for the flow):"] + [
        v for v in found if _key(v) in new])


def test_every_unit_has_a_level():
    units = {_unit(name) for name in MODULES}
    assert not units - set(LEVEL_OF), f"Give these modules a level in LEVELS: {sorted(units - set(LEVEL_OF))}"


def test_imports_point_down_the_flow():
    _check(upward_imports())


def test_no_import_cycles_between_units():
    _check(unit_cycles())


def test_only_graph_uses_onnx_helper():
    _check(helper_calls())


def test_metadata_keys_are_spelled_in_the_contract_only():
    _check(metadata_keys())


def test_no_long_modules():
    _check(long_modules())


def test_known_violations_are_still_there():
    # A fixed violation leaves the list in the same change, so the list only says what is still wrong.
    found = {_key(v) for v in all_violations()}
    gone = sorted(set(KNOWN_VIOLATIONS) - found)
    assert not gone, f"Fixed: remove from KNOWN_VIOLATIONS: {gone}"


def test_the_rules_see_a_violation():
    # The checks themselves can fail: a synthetic module importing up, a helper call and a key are caught.
    tree = ast.parse("from ..models import Model\nimport onnx\nx = onnx.helper.make_node\nk = 'onnxforge.state'\n")
    assert ("onnxforge.models", 1) in _imports("onnxforge.layers.core", tree)
    assert any(isinstance(n, ast.Attribute) and n.attr == "helper" for n in ast.walk(tree))
    assert _KEY.fullmatch("onnxforge.state") and not _KEY.fullmatch("onnxforge.ops received x")


if __name__ == "__main__":
    found = all_violations()
    print("\n".join(found))
    print(f"{len(found)} violations", file=sys.stderr)
