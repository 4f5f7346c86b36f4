"""Capture a feature function as source code, with exactly what it needs.

Given the source of a cell (or script) that defines a feature function, and the namespace the
cell ran in, :func:`capture` builds a self-contained Python module: the imports the function
uses, the module-level constants it reads (written as literals), the helper functions and
classes defined in the same cell that it calls, and the function itself. Anything the module
could not carry faithfully is refused with a :class:`~nbprod.exceptions.CaptureError` that names
it and says how to fix it: a non-constant variable from elsewhere (a DataFrame, a fitted
scaler), a function or lambda defined in another cell, a name that is not defined, ``import *``.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import symtable
import types
from dataclasses import dataclass
from typing import Any

from ..exceptions import CaptureError

_CONSTANT_TYPES = (int, float, complex, str, bytes, bool, type(None))
_MAX_CONSTANT_CHARS = 100_000
MODULE_NAME = "nbprod_features"


@dataclass(frozen=True)
class FeatureCode:
    """A captured feature function: generated module source and the function's name."""

    source: str
    fn_name: str
    cell_source: str

    def load(self) -> Any:
        """Execute the module source in a fresh namespace and return the function."""
        return load_function(self.source, self.fn_name)


def load_function(source: str, fn_name: str, filename: str = "features.py") -> Any:
    module = types.ModuleType(MODULE_NAME)
    module.__file__ = filename
    code = compile(source, filename, "exec")
    exec(code, module.__dict__)
    fn = module.__dict__.get(fn_name)
    if not callable(fn):
        raise CaptureError(f"{filename} does not define a function named {fn_name!r}.")
    return fn


# -- analysis -----------------------------------------------------------------------------
def _referenced_globals(stmt_source: str) -> set[str]:
    """Names a top-level statement reads from module scope (its own and nested scopes)."""
    table = symtable.symtable(stmt_source, "<cell>", "exec")
    names = {s.get_name() for s in table.get_symbols() if s.is_referenced()}

    def walk(t: symtable.SymbolTable) -> None:
        for child in t.get_children():
            for s in child.get_symbols():
                if s.is_referenced() and s.is_global():
                    names.add(s.get_name())
            walk(child)

    walk(table)
    return names


def _bound_names(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [stmt.name]
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        return [(a.asname or a.name).split(".")[0] for a in stmt.names]
    targets: list[ast.expr] = []
    if isinstance(stmt, ast.Assign):
        targets = list(stmt.targets)
    elif isinstance(stmt, ast.AnnAssign | ast.AugAssign):
        targets = [stmt.target]
    names = []
    for t in targets:
        for node in ast.walk(t):
            if isinstance(node, ast.Name):
                names.append(node.id)
    return names


def _statement_source(lines: list[str], stmt: ast.stmt) -> str:
    start = stmt.lineno
    decorators = getattr(stmt, "decorator_list", [])
    if decorators:
        start = min(start, *(d.lineno for d in decorators))
    end = stmt.end_lineno or stmt.lineno
    return "".join(lines[start - 1 : end])


def _choose_function(defs: dict[str, ast.stmt], fn: str | None) -> str:
    funcs = [n for n, s in defs.items() if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef)]
    if fn is not None:
        if fn not in funcs:
            import difflib

            near = difflib.get_close_matches(fn, funcs, n=1)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            found = ", ".join(funcs) or "none"
            raise CaptureError(
                f"--fn {fn!r}: the cell defines no function of that name "
                f"(functions defined: {found}).{hint}"
            )
        return fn
    if not funcs:
        raise CaptureError(
            "The features cell defines no function. Define one, e.g. "
            "`def features(df): ...`, that takes the raw input frame and returns the model input."
        )
    if "features" in funcs:
        return "features"
    if len(funcs) == 1:
        return funcs[0]
    raise CaptureError(
        f"The features cell defines several functions ({', '.join(funcs)}); name the feature "
        f"function with --fn NAME, or call it `features`."
    )


def capture(cell_source: str, namespace: dict[str, Any], fn: str | None = None) -> FeatureCode:
    """Build the feature module for function ``fn`` (default: ``features`` or the only one).

    The steps: parse the cell (:func:`_parse`), list what its top-level statements bind
    (:func:`_cell_bindings`), choose the feature function, follow the names it uses to the
    definitions, imports and constants it needs (:func:`_dependencies`), write them as one
    module (:func:`_module_source`) and import that module on its own (:func:`_self_contained`).

    Parameters
    ----------
    cell_source : str
        The features cell as plain Python (IPython syntax already transformed).
    namespace : dict
        Where the cell ran (the notebook's user namespace).
    fn : str, optional
        The feature function's name (default: ``features``, or the cell's only function).

    Returns
    -------
    FeatureCode
        The generated module's source and the function's name.

    Raises
    ------
    CaptureError
        For anything the module could not carry (a star or relative import, an undefined name,
        a value that is not a literal), naming the name and the fix.

    Examples
    --------
    >>> cell = "import math\\nSCALE = 2\\ndef features(df):\\n    return df * SCALE + math.pi\\n"
    >>> ns = {}
    >>> exec(cell, ns)
    >>> code = capture(cell, ns)
    >>> code.fn_name, "SCALE = 2" in code.source and "import math" in code.source
    ('features', True)
    """
    tree = _parse(cell_source)
    defs, imports, assigned = _cell_bindings(tree)
    fn_name = _choose_function(defs, fn)
    _check_defined(fn_name, namespace)
    lines = cell_source.splitlines(keepends=True)
    needed_defs, import_lines, constants = _dependencies(fn_name, lines, defs, imports, assigned,
                                                         namespace)
    order = {name: stmt.lineno for name, stmt in defs.items()}
    body = [_statement_source(lines, defs[n]).rstrip() for n in sorted(needed_defs, key=order.get)]
    code = FeatureCode(source=_module_source(body, import_lines, constants), fn_name=fn_name,
                       cell_source=cell_source)
    return _self_contained(code)


def _parse(cell_source: str) -> ast.Module:
    """The cell's syntax tree; refused when it is not Python or star-imports a module."""
    try:
        tree = ast.parse(cell_source)
    except SyntaxError as exc:
        raise CaptureError(
            f"The features cell is not valid Python: {exc.msg} (line {exc.lineno})."
        ) from None
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            raise CaptureError(
                f"`from {node.module} import *` (line {node.lineno}) hides which names the "
                f"features use; import the names you need, e.g. `from {node.module} import x`."
            )
    return tree


def _cell_bindings(tree: ast.Module) -> tuple[dict[str, ast.stmt], dict[str, str], dict[str, int]]:
    """What the cell's top-level statements bind: definitions (name -> def/class statement),
    imports (name -> the import statement binding it alone) and other assignments (name ->
    line)."""
    defs: dict[str, ast.stmt] = {}
    imports: dict[str, str] = {}
    assigned: dict[str, int] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defs[stmt.name] = stmt
        elif isinstance(stmt, ast.Import | ast.ImportFrom):
            for alias in stmt.names:
                bound = (alias.asname or alias.name).split(".")[0]
                one = (
                    ast.Import(names=[alias])
                    if isinstance(stmt, ast.Import)
                    else ast.ImportFrom(module=stmt.module, names=[alias], level=stmt.level)
                )
                if isinstance(stmt, ast.ImportFrom) and stmt.level:
                    raise CaptureError(
                        f"Relative import `{ast.unparse(one)}` cannot be carried into the "
                        "artifact; use an absolute import of an installed package."
                    )
                imports[bound] = ast.unparse(one)
        else:
            for name in _bound_names(stmt):
                assigned.setdefault(name, stmt.lineno)
    return defs, imports, assigned


def _dependencies(fn_name: str, lines: list[str], defs: dict[str, ast.stmt],
                  imports: dict[str, str], assigned: dict[str, int],
                  namespace: dict[str, Any]) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """Every name the feature function needs, followed through the definitions it calls: the
    cell's definitions to copy, the import lines, and the constants (name -> literal)."""
    needed_defs: list[str] = []
    import_lines: dict[str, str] = {}
    constants: dict[str, str] = {}
    seen: set[str] = set()
    queue = [fn_name]
    while queue:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in defs:
            needed_defs.append(name)
            queue.extend(_referenced_globals(_statement_source(lines, defs[name])) - {name})
        elif name in imports:
            import_lines[name] = imports[name]
        elif name in namespace:
            kind, text = _resolve_external(name, namespace[name], in_cell=name in assigned)
            if kind == "import":
                import_lines[name] = text
            else:
                constants[name] = text
        elif hasattr(builtins, name):
            continue
        else:
            raise CaptureError(
                f"The feature function uses {name!r}, which is not defined. Define or import "
                "it in the features cell."
            )
    return needed_defs, import_lines, constants


def _module_source(body: list[str], import_lines: dict[str, str],
                   constants: dict[str, str]) -> str:
    """The generated module: a docstring, the imports, the constants, the definitions."""
    parts = [
        '"""Feature code captured by nbprod. Generated; edit the notebook, not this file."""',
        "",
    ]
    if import_lines:
        parts += sorted(set(import_lines.values())) + [""]
    if constants:
        parts += [f"{n} = {constants[n]}" for n in sorted(constants)] + [""]
    parts += ["\n\n".join(body), ""]
    return "\n".join(parts)


def _self_contained(code: FeatureCode) -> FeatureCode:
    """``code``, once its module imports on its own."""
    try:
        code.load()
    except Exception as exc:  # the generated module must import on its own
        raise CaptureError(
            f"The captured feature module does not run on its own: {type(exc).__name__}: {exc}"
        ) from None
    return code


def _check_defined(fn_name: str, namespace: dict[str, Any]) -> None:
    obj = namespace.get(fn_name)
    if not callable(obj):
        raise CaptureError(f"{fn_name!r} is not a function after running the features cell.")


def _resolve_external(name: str, value: Any, *, in_cell: bool) -> tuple[str, str]:
    """How to carry a name taken from the namespace: ("import", stmt) or ("constant", literal)."""
    where = "in the features cell" if in_cell else "in another cell"
    if isinstance(value, types.ModuleType):
        modname = value.__name__
        if modname == "__main__" or not _importable(modname):
            raise CaptureError(
                f"The feature function uses module {name!r} ({modname}), which cannot be "
                "imported in production. Import an installed package instead."
            )
        if modname == name:
            return "import", f"import {modname}"
        if "." in modname and modname.rsplit(".", 1)[1] == name:
            parent, leaf = modname.rsplit(".", 1)
            return "import", f"from {parent} import {leaf}"
        return "import", f"import {modname} as {name}"
    if isinstance(value, types.FunctionType) and value.__name__ == "<lambda>":
        raise CaptureError(
            f"The feature function uses {name!r}, a lambda defined {where}; nbprod captures "
            f"source, not objects. Write it as a `def {name}(...)` in the features cell."
        )
    if _is_constant(value):
        text = repr(value)
        if len(text) > _MAX_CONSTANT_CHARS:
            raise CaptureError(
                f"Constant {name!r} is too large to embed as source ({len(text):,} characters); "
                "compute it inside the function or move it into a package."
            )
        return "constant", text
    module = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
    if isinstance(value, type | types.FunctionType | types.BuiltinFunctionType) or callable(value):
        if module == "__main__" or module is None:
            raise CaptureError(
                f"The feature function uses {name!r}, defined {where} as "
                f"{type(value).__name__}; move its definition into the %%nbprod features cell "
                "so it is captured as source."
            )
        if qualname and "<" not in qualname and _lookup(module, qualname) is value:
            head, _, leaf = qualname.rpartition(".")
            if not head:
                stmt = f"from {module} import {qualname}"
                return "import", stmt if leaf == name else f"{stmt} as {name}"
    kind = type(value).__name__
    raise CaptureError(
        f"The feature function uses {name!r}, a {kind} defined {where}, which is not a "
        "constant: the artifact would not have it in production. Compute it inside the "
        "function, pass it as a literal constant, or store it in the model."
    )


def _is_constant(value: Any, depth: int = 0) -> bool:
    if depth > 20:
        return False
    if isinstance(value, bool | int | float | complex):
        return type(value) in _CONSTANT_TYPES and _round_trips(value)
    if isinstance(value, _CONSTANT_TYPES):
        return type(value) in _CONSTANT_TYPES
    if type(value) in (list, tuple, set, frozenset):
        return all(_is_constant(v, depth + 1) for v in value) and _round_trips(value)
    if type(value) is dict:
        return all(
            _is_constant(k, depth + 1) and _is_constant(v, depth + 1) for k, v in value.items()
        ) and _round_trips(value)
    return False


def _round_trips(value: Any) -> bool:
    try:
        return ast.literal_eval(repr(value)) == value
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False


def _importable(modname: str) -> bool:
    try:
        importlib.import_module(modname)
    except Exception:
        return False
    return True


def _lookup(module: str | None, qualname: str) -> Any:
    if not module:
        return None
    try:
        obj: Any = importlib.import_module(module)
    except Exception:
        return None
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj
