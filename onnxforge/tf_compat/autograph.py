"""A small AutoGraph: Python ``if`` / ``while`` / ``for`` statements of a ``tf.function`` on tensors become
``tf.cond`` / ``tf.while_loop`` (ONNX ``If`` / ``Loop``), as TensorFlow's AutoGraph converts them.

The function's source is parsed once; each ``if``, ``while`` and ``for`` statement becomes a call of a helper
in ``autograph_ops`` with the statement's blocks as nested functions that take and return the variables the
block assigns. At run time (while tracing) a helper whose condition or iterable is a Python value runs the
statement as Python would; one on a traced tensor emits the graph op. What is converted:

* ``if`` / ``else`` whose blocks assign variables (no ``return``, ``break``, ``continue`` inside), and an
  ``if`` whose blocks each end in a ``return`` with the ``if`` last in the function body (``if x > 0:
  return x`` / ``else: return 0``, or the ``else`` block following the ``if``);
* ``while`` loops and ``for`` loops (over ``tf.range(n)`` or any tensor, or Python iterables) without
  ``break``, ``continue``, ``return`` or ``else``.

Anything else (a statement using ``global`` / ``nonlocal``, a lambda, a function whose source is not
available) is left as written: Python control flow on a traced tensor then fails with the error naming
``tf.cond`` / ``tf.while_loop``.

Example:
    >>> import numpy as np, onnxforge as tf
    >>> @tf.function
    ... def simple_relu(x):
    ...     if tf.greater(x, 0):
    ...         return x
    ...     else:
    ...         return 0
    >>> int(simple_relu(np.int32(3))), int(simple_relu(np.int32(-3)))
    (3, 0)
"""
from __future__ import annotations

__all__ = ["convert", "to_code", "do_not_convert"]

import ast
import inspect
import textwrap
import types
from collections.abc import Callable
from typing import Any

from . import autograph_ops

_AG = "__autograph__"


def _assigned(nodes: list[ast.stmt]) -> list[str]:
    """Names the statements bind (assignments, loop targets, ``with ... as``), not those of nested scopes."""
    names: dict[str, None] = {}

    class Finder(ast.NodeVisitor):
        def visit_Name(self, node: ast.Name) -> None:
            if isinstance(node.ctx, (ast.Store, ast.Del)):
                names[node.id] = None

        def visit_FunctionDef(self, node: Any) -> None:
            names[node.name] = None   # its body is another scope

        visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

        def visit_Lambda(self, node: ast.Lambda) -> None:
            return None

        def visit_ListComp(self, node: Any) -> None:
            return None

        visit_SetComp = visit_DictComp = visit_GeneratorExp = visit_ListComp

    for n in nodes:
        Finder().visit(n)
    return [n for n in names if not n.startswith("__ag_")]


def _has(nodes: list[ast.stmt], kinds: tuple[type, ...]) -> bool:
    """Whether a statement of ``kinds`` occurs in ``nodes`` outside nested scopes."""
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)

    def walk(node: ast.AST) -> bool:
        if isinstance(node, kinds):
            return True
        return any(walk(c) for c in ast.iter_child_nodes(node) if not isinstance(c, scopes))
    return any(walk(n) for n in nodes)


def _loop_exits(nodes: list[ast.stmt]) -> bool:
    """``break`` / ``continue`` of this loop (not of a loop nested in it) or any ``return`` / ``yield``."""
    if _has(nodes, (ast.Return, ast.Yield, ast.YieldFrom, ast.Global, ast.Nonlocal)):
        return True
    loops = (ast.For, ast.While, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)

    def walk(node: ast.AST) -> bool:
        if isinstance(node, (ast.Break, ast.Continue)):
            return True
        return any(walk(c) for c in ast.iter_child_nodes(node) if not isinstance(c, loops))
    return any(walk(n) for n in nodes)


def _name(id_: str, store: bool = False) -> ast.Name:
    return ast.Name(id=id_, ctx=ast.Store() if store else ast.Load())


def _call(fn: str, args: list[ast.expr]) -> ast.Call:
    return ast.Call(func=ast.Attribute(value=_name(_AG), attr=fn, ctx=ast.Load()), args=args, keywords=[])


def _function(name: str, params: list[str], body: list[ast.stmt], returns: list[str] | None) -> ast.FunctionDef:
    body = list(body) or [ast.Pass()]
    if returns is not None:
        body.append(ast.Return(value=ast.Tuple(elts=[_name(n) for n in returns], ctx=ast.Load())))
    extra = {"type_params": []} if "type_params" in ast.FunctionDef._fields else {}   # Python 3.12+
    return ast.FunctionDef(name=name, args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=p) for p in params],
                                                         kwonlyargs=[], kw_defaults=[], defaults=[]),
                           body=body, decorator_list=[], returns=None, type_comment=None, **extra)


def _current(names: list[str]) -> ast.Tuple:
    """``(ag.ld(lambda: a), ...)``: each variable's value, or ``autograph_ops.UNDEFINED`` if it has none yet."""
    return ast.Tuple(elts=[_call("ld", [ast.Lambda(args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[],
                                                                       kw_defaults=[], defaults=[]),
                                                    body=_name(n))]) for n in names], ctx=ast.Load())


def _unpack(names: list[str], value: ast.expr) -> list[ast.stmt]:
    if not names:
        return [ast.Expr(value=value)]
    return [ast.Assign(targets=[ast.Tuple(elts=[_name(n, True) for n in names], ctx=ast.Store())], value=value)]


def _loads(node: ast.AST) -> dict[str, int]:
    """How often each name is read in ``node`` (nested scopes included: a closure reads it too)."""
    counts: dict[str, int] = {}
    for n in ast.walk(node):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
            counts[n.id] = counts.get(n.id, 0) + 1
    return counts


class _Converter(ast.NodeTransformer):
    def __init__(self, function: ast.FunctionDef) -> None:
        self.count = 0
        self.reads = _loads(function)

    def fresh(self, hint: str) -> str:
        self.count += 1
        return f"__ag_{hint}_{self.count}"

    def block(self, stmts: list[ast.stmt]) -> list[ast.stmt]:
        """A statement list converted, with ``if``s ending in ``return`` folded with what follows them."""
        out: list[ast.stmt] = []
        stmts = list(stmts)
        for i, stmt in enumerate(stmts):
            if isinstance(stmt, ast.If) and self._returning_if(stmt, stmts[i + 1:]):
                orelse = stmt.orelse or stmts[i + 1:]
                then_fn, else_fn = self.fresh("then"), self.fresh("else")
                out += [_function(then_fn, [], self.block(stmt.body), None),
                        _function(else_fn, [], self.block(orelse), None),
                        ast.Return(value=_call("if_return", [self.visit(stmt.test), _name(then_fn), _name(else_fn)]))]
                return out
            out += self._visit_stmt(stmt)
        return out

    @staticmethod
    def _returning_if(stmt: ast.If, rest: list[ast.stmt]) -> bool:
        def ends(block: list[ast.stmt]) -> bool:
            return bool(block) and isinstance(block[-1], ast.Return) and not _has(block[:-1], (ast.Return,)) \
                and not _has(block, (ast.Yield, ast.YieldFrom, ast.Global, ast.Nonlocal))
        orelse = stmt.orelse or rest
        return ends(stmt.body) and ends(orelse) and (not stmt.orelse or not rest)

    def _visit_stmt(self, stmt: ast.stmt) -> list[ast.stmt]:
        if isinstance(stmt, ast.If):
            return self._if(stmt)
        if isinstance(stmt, ast.While):
            return self._while(stmt)
        if isinstance(stmt, ast.For):
            return self._for(stmt)
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return [stmt]   # another scope: left as written
        for field in ("body", "orelse", "finalbody"):   # with / try blocks
            if isinstance(getattr(stmt, field, None), list):
                setattr(stmt, field, self.block(getattr(stmt, field)))
        if isinstance(stmt, ast.Try):
            for handler in stmt.handlers:
                handler.body = self.block(handler.body)
        return [stmt]

    def _if(self, stmt: ast.If) -> list[ast.stmt]:
        blocks = stmt.body + stmt.orelse
        if _has(blocks, (ast.Return, ast.Break, ast.Continue, ast.Yield, ast.YieldFrom, ast.Global, ast.Nonlocal)):
            stmt.body, stmt.orelse = self.block(stmt.body), self.block(stmt.orelse)
            return [stmt]
        # Only what is read outside the statement leaves it (TensorFlow's liveness): a temporary of one
        # branch need not exist in the other.
        inside = _loads(stmt)
        names = [n for n in _assigned(blocks) if self.reads.get(n, 0) > inside.get(n, 0)]
        then_fn, else_fn = self.fresh("then"), self.fresh("else")
        return [_function(then_fn, names, self.block(stmt.body), names),
                _function(else_fn, names, self.block(stmt.orelse), names),
                *_unpack(names, _call("if_stmt", [self.visit(stmt.test), _name(then_fn), _name(else_fn),
                                                  _current(names), ast.Constant(value=tuple(names))]))]

    def _while(self, stmt: ast.While) -> list[ast.stmt]:
        if stmt.orelse or _loop_exits(stmt.body):
            stmt.body = self.block(stmt.body)
            return [stmt]
        names = _assigned(stmt.body)
        test_fn, body_fn = self.fresh("test"), self.fresh("body")
        return [_function(test_fn, names, [ast.Return(value=stmt.test)], None),
                _function(body_fn, names, self.block(stmt.body), names),
                *_unpack(names, _call("while_stmt", [_name(test_fn), _name(body_fn), _current(names),
                                                     ast.Constant(value=tuple(names))]))]

    def _for(self, stmt: ast.For) -> list[ast.stmt]:
        if stmt.orelse or _loop_exits(stmt.body):
            stmt.body = self.block(stmt.body)
            return [stmt]
        names = _assigned([ast.Assign(targets=[stmt.target], value=ast.Constant(value=None))] + stmt.body)
        item, body_fn = self.fresh("item"), self.fresh("body")
        head = ast.Assign(targets=[stmt.target], value=_name(item))
        return [_function(body_fn, [item] + names, [head] + self.block(stmt.body), names),
                *_unpack(names, _call("for_stmt", [stmt.iter, _name(body_fn), _current(names),
                                                   ast.Constant(value=tuple(names))]))]


def _needs_conversion(fn_node: ast.FunctionDef) -> bool:
    return _has(fn_node.body, (ast.If, ast.While, ast.For))


def _converted_node(target: types.FunctionType) -> tuple[ast.FunctionDef, int] | None:
    """The function's definition with its statements converted, and its first line; ``None`` when there is
    nothing to convert or the source cannot be read."""
    if getattr(target, "__ag_do_not_convert__", False) or target.__name__ == "<lambda>":
        return None
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(target)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, ast.FunctionDef) or node.name != target.__name__ or not _needs_conversion(node):
        return None
    node.decorator_list = []
    node.body = _Converter(node).block(node.body)
    return node, target.__code__.co_firstlineno


def convert(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with its ``if`` / ``while`` / ``for`` statements converted (see the module docstring), or ``fn``
    itself where there is nothing to convert or its source cannot be read."""
    target = fn.__func__ if isinstance(fn, types.MethodType) else fn
    found = _converted_node(target) if isinstance(target, types.FunctionType) else None
    if found is None:
        return fn
    node, first_line = found
    free = list(target.__code__.co_freevars)
    try:
        cells = [c.cell_contents for c in (target.__closure__ or ())]
    except ValueError:   # an empty cell (a recursive definition): leave the function as written
        return fn
    factory = _function("__ag_factory", [_AG] + free, [node, ast.Return(value=_name(node.name))], None)
    module = ast.Module(body=[factory], type_ignores=[])
    ast.fix_missing_locations(module)
    ast.increment_lineno(module, first_line - 1)   # tracebacks point into the user's file
    namespace: dict[str, Any] = {}
    try:
        exec(compile(module, target.__code__.co_filename, "exec"), target.__globals__, namespace)
    except SyntaxError:
        return fn
    converted = namespace["__ag_factory"](autograph_ops, *cells)
    converted.__defaults__, converted.__kwdefaults__ = target.__defaults__, target.__kwdefaults__
    converted.__wrapped__ = target
    return types.MethodType(converted, fn.__self__) if isinstance(fn, types.MethodType) else converted


def to_code(fn: Callable[..., Any], recursive: bool = True, experimental_optional_features: Any = None) -> str:
    """``tf.autograph.to_code``: the Python source of ``fn`` as ``tf.function`` runs it (the converted
    statements call ``__autograph__``'s helpers), or its own source when nothing is converted."""
    target = getattr(fn, "python_function", fn)
    target = target.__func__ if isinstance(target, types.MethodType) else target
    found = _converted_node(target) if isinstance(target, types.FunctionType) else None
    if found is None:
        return textwrap.dedent(inspect.getsource(target))
    return ast.unparse(ast.fix_missing_locations(found[0])) + "\n"


def do_not_convert(func: Callable[..., Any] | None = None) -> Any:
    """``tf.autograph.experimental.do_not_convert``: ``func`` runs as written inside a ``tf.function``."""
    def mark(f: Callable[..., Any]) -> Callable[..., Any]:
        target = f.__func__ if isinstance(f, types.MethodType) else f
        target.__ag_do_not_convert__ = True
        return f
    return mark if func is None else mark(func)
