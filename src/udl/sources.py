"""The code behind a figure, as a reader of the gallery sees it: file, line and highlighted source.

A figure is three functions (computation, drawing, checks); the computation calls
library code (``udl.nn``, ``udl.models``, ``udl.train``...) and sometimes private helpers
of its figure module. :func:`figure_sources` finds them by reading the functions'
syntax trees, without running anything: every name (and attribute chain such as
``gpt.GPT`` where a module was imported) is looked up in the figure module's globals,
and what it names is kept when it is a function or class written in udl::

    >>> blocks = figure_sources("12.12")
    >>> [(b.kind, b.name) for b in blocks][:2]           # doctest: +SKIP
    [('computation', 'udl.figures.ch12_gpt.gpt_decoder'), ('figure helper', 'udl.figures.ch12_gpt._decoder')]
    >>> gpt = next(b for b in blocks if b.name == "udl.models.gpt.GPT")
    >>> gpt.kind, gpt.location, gpt.via                  # doctest: +SKIP
    ('library', 'src/udl/models/gpt.py:163', 'udl.train.transformers.pretrained_gpt')

The blocks come in reading order: the computation, the figure helpers (functions of
``udl.figures`` modules that the figure's functions call), the library functions and
classes the computation calls (directly and through its helpers; and the networks,
``torch.nn.Module`` classes of ``udl.models`` and ``udl.nn``, that those library functions
build), the drawing, the checks. The figure framework (``Result``, ``Check``, the
palette) and the parameter checks attached with ``@spec.requires`` are left out. Paths
are relative to :func:`source_root` (the repository root for a checkout, so they read
``src/udl/...``; the folder above the package for an installed udl).
"""

from __future__ import annotations

import ast
import html
import inspect
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from udl.validate import check_choice, check_instance, check_int

KINDS = ("computation", "figure helper", "library", "drawing", "checks")
MAX_LINES = 200  # longer sources (big classes) are cut here, saying how many lines were left out
HELPER_DEPTH = 3  # how deep figure helpers are followed (helpers of helpers of helpers)
# Library functions are followed one level further for the networks (torch modules) they build
# (``pretrained_gpt`` -> ``GPT``).
NETWORKS = ("udl.models.", "udl.nn.")
# The figure framework and the palette: names every figure uses, not the book's content.
FRAMEWORK = ("udl.registry", "udl.runner", "udl.style", "udl.validate", "udl.sources")


@dataclass(frozen=True)
class SourceBlock:
    """One piece of code behind a figure.

    Args:
        name: the qualified name, ``"udl.models.gpt.GPT"``.
        kind: one of ``"computation"``, ``"figure helper"``, ``"library"``, ``"drawing"``, ``"checks"``.
        path: the file, relative to :func:`source_root` (``"src/udl/models/gpt.py"``); never absolute.
        line: the file's line number of the block's first line (a decorator, if any, else ``def``/``class``).
        code: the source (cut after :data:`MAX_LINES` lines, with a closing comment saying so).
        html: ``code`` highlighted by Pygments (class-based spans, line numbers of the file; see
            :func:`pygments_css`).
        omitted: how many lines were cut from ``code`` (0 when it is whole).
        via: for a helper or library block found through another function than the computation, that
            function's qualified name (``udl.models.gpt.GPT`` via ``udl.train.transformers.pretrained_gpt``);
            ``""`` when the computation (or the drawing or checks, for their own helpers) names it itself.
    """

    name: str
    kind: str
    path: str
    line: int
    code: str
    html: str
    omitted: int = 0
    via: str = ""

    def __post_init__(self):
        check_instance(self.name, "name", "SourceBlock", str)
        check_choice(self.kind, "kind", "SourceBlock", KINDS)
        check_instance(self.path, "path", "SourceBlock", str)
        if Path(self.path).is_absolute() or not self.path:
            raise ValueError(f"The 'path' parameter of SourceBlock must be a non-empty relative path. "
                             f"Got {self.path!r} instead.")
        check_int(self.line, "line", "SourceBlock")
        check_instance(self.code, "code", "SourceBlock", str)
        check_instance(self.html, "html", "SourceBlock", str)
        check_int(self.omitted, "omitted", "SourceBlock", minimum=0)
        check_instance(self.via, "via", "SourceBlock", str)

    @property
    def location(self) -> str:
        """``"src/udl/models/gpt.py:212"``."""
        return f"{self.path}:{self.line}"


# --------------------------------------------------------------------------- highlighting
def highlight(code: str, *, start: int | None = None) -> str:
    """``code`` as Python highlighted by Pygments: ``<div class="highlight"><pre>...`` with class-based
    spans (the colours are in :func:`pygments_css`); ``start`` numbers the lines from there (the file's line
    numbers, in spans of class ``linenos`` that copying leaves out)."""
    check_instance(code, "code", "highlight", str)
    if start is not None:
        check_int(start, "start", "highlight")
    return _highlight(code, start)


@lru_cache(maxsize=4096)
def _highlight(code: str, start: int | None) -> str:
    from pygments import highlight as pyg_highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    formatter = HtmlFormatter(cssclass="highlight", linenos="inline" if start else False, linenostart=start or 1)
    return pyg_highlight(code, PythonLexer(stripnl=False), formatter)


def pygments_css(style: str = "default") -> str:
    """The stylesheet for :func:`highlight`'s classes, every rule scoped under ``.highlight`` (Pygments'
    own leaves ``pre`` and the line numbers unscoped); line numbers are grey and not selected with the code."""
    check_instance(style, "style", "pygments_css", str)
    from pygments.formatters import HtmlFormatter
    from pygments.styles import get_all_styles

    check_choice(style, "style", "pygments_css", sorted(get_all_styles()))
    rules = []
    for rule in HtmlFormatter(style=style, cssclass="highlight").get_style_defs(".highlight").splitlines():
        rules.append(rule if rule.startswith(".highlight") or not rule.strip() else f".highlight {rule}")
    rules.append(".highlight pre { overflow-x: auto; }")
    rules.append(".highlight span.linenos { color: #888; user-select: none; -webkit-user-select: none; "
                 "padding-right: 1em; }")
    return "\n".join(rules) + "\n"


# --------------------------------------------------------------------------- paths
@lru_cache(maxsize=1)
def source_root() -> Path:
    """The folder that :attr:`SourceBlock.path` is relative to: the repository root when udl runs from a
    ``src/`` checkout (a ``pyproject.toml`` beside ``src``), else the folder above the ``udl`` package."""
    import udl

    above = Path(udl.__file__).resolve().parent.parent
    if above.name == "src" and (above.parent / "pyproject.toml").is_file():
        return above.parent
    return above


def _relative(file: str) -> str | None:
    try:
        return Path(file).resolve().relative_to(source_root()).as_posix()
    except ValueError:  # outside udl (never the case for the objects kept here)
        return None


# --------------------------------------------------------------------------- reading the functions
def _qualified(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


class _References(ast.NodeVisitor):
    """The names a function reads, in source order: ``("relu",)``, ``("gpt", "GPT")`` for ``gpt.GPT``."""

    def __init__(self):
        self.chains: list[tuple[str, ...]] = []
        self.called: set[tuple[str, ...]] = set()  # the chains that are called: ``GPT(config)``
        self.local: set[str] = set()

    def visit_Call(self, node: ast.Call):
        func, chain = node.func, []
        while isinstance(func, ast.Attribute):
            chain.append(func.attr)
            func = func.value
        if isinstance(func, ast.Name):
            self.called.add((func.id, *reversed(chain)))
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute):
        chain, value = [node.attr], node.value
        while isinstance(value, ast.Attribute):
            chain.append(value.attr)
            value = value.value
        if isinstance(value, ast.Name):
            self.chains.append((value.id, *reversed(chain)))
        else:
            self.visit(value)

    def visit_Name(self, node: ast.Name):
        if isinstance(node.ctx, ast.Load):
            self.chains.append((node.id,))
        else:
            self.local.add(node.id)

    def visit_arguments(self, node: ast.arguments):
        for arg in (*node.posonlyargs, *node.args, *node.kwonlyargs, node.vararg, node.kwarg):
            if arg is not None:
                self.local.add(arg.arg)
        for default in (*node.defaults, *node.kw_defaults):
            if default is not None:
                self.visit(default)

    def visit_AnnAssign(self, node: ast.AnnAssign):  # ``x: T = v``: the annotation names a type, not a call
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)

    def visit_FunctionDef(self, node):  # a nested function: its name is local; its annotations are skipped
        self.local.add(node.name)
        for child in (*node.decorator_list, node.args, *node.body):
            self.visit(child)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self.local.add(node.name)
        for child in (*node.decorator_list, *node.bases, *node.keywords, *node.body):
            self.visit(child)

    def visit_Lambda(self, node: ast.Lambda):
        self.visit(node.args)
        self.visit(node.body)

    def visit_Import(self, node):  # a local import binds its name locally
        for alias in node.names:
            self.local.add((alias.asname or alias.name).split(".")[0])

    visit_ImportFrom = visit_Import


@dataclass(frozen=True)
class _Definition:
    """Where a ``def`` or ``class`` is in its file (decorators included) and its syntax tree."""

    file: str
    first: int  # the first line (the first decorator's, if any)
    last: int
    node: ast.AST


@lru_cache(maxsize=None)
def _definitions(file: str) -> tuple[list[str], dict[int, _Definition], dict[str, _Definition]]:
    """A file's lines and its definitions, parsed once: by first line (a function's ``co_firstlineno``)
    and by qualified name (a class's ``__qualname__``; the last definition of a name wins, as in Python)."""
    text = Path(file).read_text(encoding="utf-8")
    by_line, by_name = {}, {}

    def walk(body, prefix):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                first = min([d.lineno for d in node.decorator_list] + [node.lineno])
                found = _Definition(file, first, node.end_lineno, node)
                by_line[first] = found  # a function's co_firstlineno is its first decorator's line
                by_name[prefix + node.name] = found
                inner = f"{prefix}{node.name}." + ("<locals>." if not isinstance(node, ast.ClassDef) else "")
                walk(node.body, inner)
            elif isinstance(node, (ast.If, ast.Try, ast.With)):  # definitions under ``if``/``try`` at module level
                for field in ("body", "orelse", "finalbody", "handlers"):
                    walk(getattr(node, field, []), prefix)
            elif isinstance(node, ast.ExceptHandler):
                walk(node.body, prefix)

    walk(ast.parse(text, filename=file).body, "")
    return text.splitlines(keepends=True), by_line, by_name


def _definition(obj: Any) -> _Definition | None:
    """Where ``obj`` (a function or class) is defined, or None when its source cannot be read."""
    try:
        file = inspect.getsourcefile(obj)
    except TypeError:
        return None
    if not file or not Path(file).is_file():
        return None
    try:
        _, by_line, by_name = _definitions(file)
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    if inspect.isfunction(obj):
        found = by_line.get(obj.__code__.co_firstlineno)
        ok = found is not None and found.node.name == obj.__name__
    else:
        found = by_name.get(obj.__qualname__)
        ok = found is not None and isinstance(found.node, ast.ClassDef)
    return found if ok else None


def _lookup(chain: tuple[str, ...], namespace: dict[str, Any]) -> Any:
    """What ``a.b.c`` names: attributes are followed through modules; a class ends the chain
    (``GPTConfig.tiny`` names the class)."""
    obj = namespace.get(chain[0])
    for attr in chain[1:]:
        if not inspect.ismodule(obj):
            break
        obj = getattr(obj, attr, None)
    return obj


@lru_cache(maxsize=None)
def _scan(fn: Callable) -> tuple[tuple[Any, ...], frozenset[int]]:
    """The udl functions and classes ``fn`` names (in source order, each once), and the ids of those it calls."""
    where = _definition(fn)
    if where is None:
        return (), frozenset()
    refs = _References()
    node = where.node
    # the parameters, their defaults and the body: not the decorators (``@figure(...)``'s presets, in the module's
    # scope) nor the annotations (types named, not called)
    refs.visit(node.args)
    for statement in node.body:
        refs.visit(statement)
    namespace = dict(fn.__globals__)
    try:
        namespace.update(inspect.getclosurevars(fn).nonlocals)
    except (TypeError, ValueError):
        pass
    found: dict[int, Any] = {}
    called = set()
    for chain in refs.chains:
        if chain[0] in refs.local:
            continue
        obj = _lookup(chain, namespace)
        obj = inspect.unwrap(obj) if callable(obj) else obj
        if (inspect.isfunction(obj) or inspect.isclass(obj)) and str(getattr(obj, "__module__", "")).startswith("udl."):
            found.setdefault(id(obj), obj)
            if chain in refs.called:
                called.add(id(obj))
    return tuple(found.values()), frozenset(called)


def _callees(fn: Callable) -> tuple[Any, ...]:
    """The udl functions and classes ``fn`` names, in source order, each once."""
    return _scan(fn)[0]


def _built(fn: Callable) -> tuple[Any, ...]:
    """The udl classes ``fn`` calls (builds), not those it only names (``isinstance(model, GPT)``)."""
    objects, called = _scan(fn)
    return tuple(obj for obj in objects if inspect.isclass(obj) and id(obj) in called)


def _is_network(obj: Any) -> bool:
    """A public ``torch.nn.Module`` of ``udl.models`` or ``udl.nn``: what a recipe builds and trains."""
    import torch

    return (obj.__module__.startswith(NETWORKS) and not obj.__name__.startswith("_")
            and issubclass(obj, torch.nn.Module))


def _is_helper(obj: Any) -> bool:
    return obj.__module__.startswith("udl.figures.")


def _is_library(obj: Any) -> bool:
    module = obj.__module__
    if inspect.isclass(obj) and issubclass(obj, BaseException):  # what a figure catches is not what it computes
        return False
    return not _is_helper(obj) and not any(module == m or module.startswith(m + ".") for m in FRAMEWORK)


@lru_cache(maxsize=None)
def _block(obj: Callable, kind: str, name: str | None = None) -> SourceBlock | None:
    where = _definition(obj)
    path = None if where is None else _relative(where.file)
    if path is None:
        return None
    start = where.first
    lines = _definitions(where.file)[0][start - 1:where.last]
    omitted = max(0, len(lines) - MAX_LINES)
    code = "".join(lines[:MAX_LINES])
    if not code.endswith("\n"):
        code += "\n"
    markup = highlight(code, start=start)
    if omitted:  # a closing comment, without a line number of its own (it is not a line of the file)
        end = start + len(lines) - 1
        note = f"# ... {omitted} more lines ({path}, lines {start + MAX_LINES}-{end})\n"
        blank = " " * len(str(start + MAX_LINES - 1))
        tail = "</pre></div>\n"
        assert markup.endswith(tail)
        markup = (markup[:-len(tail)] + f'<span class="linenos">{blank}</span><span class="c1">'
                  f'{html.escape(note.rstrip(), quote=False)}</span>\n' + tail)
        code += note
    return SourceBlock(name or _qualified(obj), kind, path, start, code, markup, omitted)


# --------------------------------------------------------------------------- the figure's sources
def figure_sources(fig_id_or_spec: Any) -> list[SourceBlock]:
    """The code behind a figure, in reading order: computation, figure helpers, library, drawing, checks.

    Args:
        fig_id_or_spec: a figure id (``"12.12"``) or its :class:`~udl.registry.FigureSpec`.

    Returns a list of :class:`SourceBlock` (each object once). Nothing is computed: the functions'
    sources are read and their names looked up. An unknown id raises :class:`~udl.registry.UnknownFigure`.

    Example::

        >>> [b.name for b in figure_sources("3.1")]
        ['udl.figures.ch03.relu_curve', 'udl.nn.activations.relu', 'udl.figures.ch03.relu_curve.plot', \
'udl.figures.ch03.relu_curve.checks']
    """
    from udl.registry import FigureSpec, get

    if isinstance(fig_id_or_spec, str):
        spec = get(fig_id_or_spec)
    else:
        spec = check_instance(fig_id_or_spec, "fig_id_or_spec", "figure_sources", (str, FigureSpec))
    return list(_figure_sources(spec.compute, spec.draw_fn, spec.checks_fn))


@lru_cache(maxsize=None)
def _figure_sources(compute: Callable, draw: Callable | None, checks: Callable | None) -> tuple[SourceBlock, ...]:
    names = {compute: _qualified(compute)}
    for fn, decorator in ((draw, "plot"), (checks, "checks")):
        if fn is not None:  # usually named ``_``: named here by the figure and the decorator that attached it
            names[fn] = _qualified(fn) if fn.__name__ != "_" else f"{names[compute]}.{decorator}"
    via: dict[Any, Callable] = {}  # each object found through a function other than the computation: which

    def helpers_of(roots) -> list[Any]:
        """Figure helpers reachable from ``roots`` (breadth first, up to HELPER_DEPTH calls deep)."""
        found, frontier = [], list(roots)
        for _ in range(HELPER_DEPTH):
            nxt = []
            for fn in frontier:
                for obj in _callees(fn):
                    if _is_helper(obj) and obj not in names and obj not in found and obj not in via:
                        found.append(obj)
                        via[obj] = fn
                        if inspect.isfunction(obj):
                            nxt.append(obj)
            frontier = nxt
        return found

    computing = helpers_of([compute])
    library = []
    for fn in [compute, *[h for h in computing if inspect.isfunction(h)]]:
        for obj in _callees(fn):
            if _is_library(obj) and obj not in library:
                library.append(obj)
                via[obj] = fn
    for fn in [obj for obj in library if inspect.isfunction(obj)]:  # the networks a recipe builds
        for obj in _built(fn):
            if _is_network(obj) and obj not in library:
                library.append(obj)
                via[obj] = fn
    drawing = helpers_of([f for f in (draw, checks) if f is not None])

    entries = [(compute, "computation"), *[(h, "figure helper") for h in computing + drawing],
               *[(obj, "library") for obj in library], (draw, "drawing"), (checks, "checks")]
    blocks = []
    for obj, kind in entries:
        block = None if obj is None else _block(obj, kind, names.get(obj))
        if block is not None:
            through = via.get(obj, compute)
            blocks.append(block if through is compute else replace(block, via=names.get(through, _qualified(through))))
    return tuple(blocks)


__all__ = ["SourceBlock", "KINDS", "MAX_LINES", "figure_sources", "highlight", "pygments_css", "source_root"]
