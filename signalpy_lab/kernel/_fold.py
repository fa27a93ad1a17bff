"""``graph.py`` as Python, with what Cython decides at compile time decided at import.

Compiled, Cython resolves ``if cython.compiled:`` and the node states (``_DIRTY`` ...,
declared C constants) when it translates ``graph.py``: the compiled engine pays for neither.
As Python, each ``cython.compiled`` was a global, an attribute and a jump, and each state a
global, on the engine's every path. This loader gives the pure engine the same: it parses
``graph.py``, puts ``False`` for ``cython.compiled`` and the literal for each module-level
``NAME = cython.declare(type, literal)`` that nothing reassigns, and lets CPython's compiler
drop the branches that can no longer run. Nothing else changes: one source, the same file and
line numbers in tracebacks and debuggers, the same behaviour (``cython.compiled`` is False
whenever this module runs as Python). Measured A/B (``benchmarks.ab_engine``, counted): about
4% fewer instructions on the kairo cases.

The folded code is cached beside the source's own bytecode (``__pycache__/graph.<tag>.opt-
fold.pyc``), keyed by a hash of the source and of this module: byte-compiled ``graph.py``
(pip's, ``compileall``'s) stays the plain one, and an edit to either file is seen at once.
"""
from __future__ import annotations

import ast
import contextlib
import importlib.machinery
import importlib.util
import marshal
import os
import sys
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

__all__ = ["FoldingLoader", "fold", "load"]

_THIS_SOURCE = Path(__file__).read_bytes()


def _literal(node: ast.expr) -> Any:
    """The value of a literal number (``2``, ``-1``), or raise ValueError."""
    value = ast.literal_eval(node)
    if type(value) not in (int, float, bool):
        raise ValueError("not a number")
    return value


def _declared_constants(tree: ast.Module) -> dict[str, Any]:
    """Module-level ``NAME = cython.declare(type, literal)`` assigned nowhere else."""
    declared: dict[str, Any] = {}
    for statement in tree.body:
        if (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                and isinstance(statement.targets[0], ast.Name)
                and isinstance(call := statement.value, ast.Call)
                and isinstance(call.func, ast.Attribute) and call.func.attr == "declare"
                and isinstance(call.func.value, ast.Name) and call.func.value.id == "cython"
                and len(call.args) == 2 and not call.keywords):
            try:
                declared[statement.targets[0].id] = _literal(call.args[1])
            except ValueError:
                continue
    stores: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            stores[node.id] = stores.get(node.id, 0) + 1
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            for name in node.names:
                stores[name] = stores.get(name, 0) + 2  # may be rebound: never folded
        elif isinstance(node, ast.arg):
            stores[node.arg] = stores.get(node.arg, 0) + 2  # a parameter shadows it
    return {name: value for name, value in declared.items() if stores.get(name) == 1}


class _Fold(ast.NodeTransformer):
    def __init__(self, constants: dict[str, Any]) -> None:
        self.constants = constants

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if (node.attr == "compiled" and isinstance(node.value, ast.Name)
                and node.value.id == "cython" and isinstance(node.ctx, ast.Load)):
            return ast.copy_location(ast.Constant(False), node)
        return self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and node.id in self.constants:
            return ast.copy_location(ast.Constant(self.constants[node.id]), node)
        return node


def fold(source: bytes | str, filename: str) -> CodeType:
    """Compile ``source`` with ``cython.compiled`` and the declared constants folded."""
    tree = ast.parse(source, filename)
    tree = _Fold(_declared_constants(tree)).visit(tree)
    return compile(tree, filename, "exec", dont_inherit=True)  # type: ignore[no-any-return]


class FoldingLoader(importlib.machinery.SourceFileLoader):
    """A source loader whose code is ``fold``\\ ed, cached apart from the plain bytecode."""

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        source = self.get_data(path)
        key = importlib.util.MAGIC_NUMBER + importlib.util.source_hash(source + _THIS_SOURCE)
        cache = importlib.util.cache_from_source(
            path, optimization=f"fold{sys.flags.optimize or ''}")
        try:
            with open(cache, "rb") as cached:
                data = cached.read()
            if data.startswith(key):
                code = marshal.loads(data[len(key):])
                if isinstance(code, CodeType):
                    return code
        except (OSError, EOFError, ValueError, TypeError):
            pass  # missing, unreadable or damaged: compile again
        code = fold(source, path)
        if sys.dont_write_bytecode:
            return code
        partial = f"{cache}.{os.getpid()}.tmp"
        try:  # best effort, as CPython's own cache: a read-only install compiles each time
            os.makedirs(os.path.dirname(cache), exist_ok=True)
            with open(partial, "wb") as out:
                out.write(key + marshal.dumps(code))
            os.replace(partial, cache)  # whole or not at all, for a concurrent import
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(partial)
        return code


def load(name: str, path: Path) -> ModuleType:
    """Import ``path`` as module ``name`` through ``FoldingLoader``; put it in sys.modules."""
    loader = FoldingLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
