"""The figure registry: every figure is a computation, a drawing and a list of checks.

A figure module declares each figure with :func:`figure`::

    @figure("3.1", title="The ReLU activation", caption="...",
            params={"tiny": dict(n=101), "full": dict(n=1001)})
    def relu(p, run):                      # real computation -> Result
        z = torch.linspace(-5, 5, p.n)
        return Result(metrics={...}, arrays={"z": z.numpy(), ...})

    @relu.plot
    def _(r):                              # matplotlib only, no computation
        ...

    @relu.checks
    def _(r):                              # the caption's claims, measured
        return [Check.close("relu(z) equals torch.relu(z)", ..., 0.0)]

The three parts stay separate so that tests check numbers without drawing and the
gallery draws without recomputing. Ids follow the book ("3.5", "C.1") or name a
passage ("3.regions", "8.cv").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from udl.validate import check_choice, is_int, is_real

import numpy as np

PRESETS = ("tiny", "full")
_PARAM_TYPES = (bool, int, float, str)


# --------------------------------------------------------------------------- checks
@dataclass(frozen=True)
class Check:
    """One claim of a caption, measured on the computed numbers."""

    claim: str  # the statement, in words
    measured: Any  # what the computation gave
    expected: Any  # what the claim says (a value, a bound, or a short description)
    ok: bool  # whether the measurement supports the claim (False when not tested)
    tested: bool = True  # False: this run's parameters cannot test the claim (see ``untested``)

    @classmethod
    def close(cls, claim: str, measured: float, expected: float, tol: float, rel: bool = False) -> Check:
        """``|measured - expected| <= tol`` (or ``<= tol * |expected|`` when ``rel``)."""
        measured, expected = float(measured), float(expected)
        bound = tol * abs(expected) if rel else tol
        ok = math.isfinite(measured) and abs(measured - expected) <= bound
        return cls(claim, measured, f"{expected:g} ± {bound:.3g}", bool(ok))

    @classmethod
    def equal(cls, claim: str, measured: Any, expected: Any) -> Check:
        """Exact equality of numbers, strings or (nested) lists."""
        measured, expected = to_jsonable(measured), to_jsonable(expected)
        return cls(claim, measured, expected, measured == expected)

    @classmethod
    def less(cls, claim: str, measured: float, bound: float) -> Check:
        """``measured < bound``."""
        measured, bound = float(measured), float(bound)
        return cls(claim, measured, f"< {bound:g}", bool(measured < bound))

    @classmethod
    def greater(cls, claim: str, measured: float, bound: float) -> Check:
        """``measured > bound``."""
        measured, bound = float(measured), float(bound)
        return cls(claim, measured, f"> {bound:g}", bool(measured > bound))

    @classmethod
    def holds(cls, claim: str, ok: bool, measured: Any, expected: Any = True) -> Check:
        """A claim whose truth was established by the caller; ``measured`` says what was seen."""
        return cls(claim, to_jsonable(measured), to_jsonable(expected), bool(ok))

    @classmethod
    def untested(cls, claim: str, why: str) -> Check:
        """A claim that this run's parameters cannot test (too few points, a sweep that
        misses the regime the claim is about...): recorded as "not tested", never passed.

        ``why`` says what is missing, e.g. ``"needs widths on both sides of P = N"``.
        """
        return cls(claim, "not tested", why, False, tested=False)

    @property
    def status(self) -> str:
        """``"passed"``, ``"failed"`` or ``"not tested"``."""
        return "not tested" if not self.tested else ("passed" if self.ok else "failed")

    def to_dict(self) -> dict:
        """The record's form: an untested check has ``"ok": null`` and ``"tested": false``."""
        out = {"claim": self.claim, "measured": to_jsonable(self.measured),
               "expected": to_jsonable(self.expected), "ok": bool(self.ok) if self.tested else None}
        if not self.tested:
            out["tested"] = False
        return out


def tally(checks: list[dict]) -> dict[str, int]:
    """Count a record's checks (their ``to_dict`` form): ``{"passed", "failed", "not_tested"}``."""
    counts = {"passed": 0, "failed": 0, "not_tested": 0}
    for c in checks:
        counts["not_tested" if c.get("tested") is False else "passed" if c["ok"] else "failed"] += 1
    return counts


# --------------------------------------------------------------------------- results
@dataclass
class Result:
    """What a figure's computation returns, completed by the runner.

    ``metrics`` holds every number a check or a reader needs (JSON-serialisable once
    converted by :func:`to_jsonable`); ``arrays`` holds what the drawing needs.
    ``notes`` says, in words, how this run differs from the book (if it does).
    """

    metrics: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    notes: str = ""
    # filled in by the runner
    id: str = ""
    preset: str = ""
    seed: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"
    cached: bool = False
    energy: dict[str, Any] = field(default_factory=dict)  # udl.carbon's measurement of the run that computed it

    @property
    def spec(self) -> FigureSpec:
        return REGISTRY[self.id]

    @property
    def ok(self) -> bool:
        """Every tested check holds, and at least one check was tested."""
        tested = [c for c in self.checks if c.tested]
        return bool(tested) and all(c.ok for c in tested)

    def __repr__(self) -> str:
        """One line: which figure, whether its claims hold, and the names of its numbers."""
        counts = tally([c.to_dict() for c in self.checks])
        checks = f"{counts['passed']}/{counts['passed'] + counts['failed']} checks passed"
        if counts["not_tested"]:
            checks += f", {counts['not_tested']} not tested"
        names = list(self.metrics)
        shown = ", ".join(names[:6]) + (f", ... ({len(names)} in all)" if len(names) > 6 else "")
        where = f"{self.id!r}, preset={self.preset!r}, seed={self.seed}" if self.id else "not run"
        return f"Result({where}: {checks}, {self.seconds:.2f} s; metrics: {shown or 'none'})"

    def plot(self):
        """Draw the figure (a :class:`matplotlib.figure.Figure`, shown inline in Jupyter)."""
        return self.spec.draw(self)

    def _repr_png_(self):  # Jupyter shows the picture for a bare ``udl.figure(...)``
        import io

        import matplotlib.pyplot as plt

        fig = self.plot()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        return buf.getvalue()


def to_jsonable(x: Any) -> Any:
    """Convert numpy/torch scalars and arrays (nested in lists/dicts) to plain Python."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else str(x)  # JSON has no nan/inf
    return x


# --------------------------------------------------------------------------- parameters
class Params:
    """A figure's parameters for one run: read-only attributes (``p.steps``)."""

    def __init__(self, values: dict[str, Any]):
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"no parameter {name!r}; parameters: {', '.join(self._values)}") from None

    def __setattr__(self, name, value):
        raise AttributeError("figure parameters are read-only; override them with --set KEY=VALUE")

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def __repr__(self) -> str:
        return f"Params({self._values})"


@dataclass(frozen=True)
class Limit:
    """The values a figure parameter may take; the runner checks them before computing.

    A number, or each element of a list, lies in [``low``, ``high``] (None: no bound;
    floats must also be finite); a list holds ``min_len`` to ``max_len`` elements; a
    string or number is one of ``choices`` (when given). In ``figure(limits=...)`` a pair
    ``(low, high)`` is short for ``Limit(low, high)``::

        limits={"n_train": (2, 10_000), "widths": Limit(1, 4096, min_len=2), "lr": (1e-6, 10.0)}

    Bounds say what the computation can do, not what the book used: the widest range
    that still runs in memory and time on a laptop and gives a meaningful figure.
    """

    low: float | None = None
    high: float | None = None
    min_len: int = 1
    max_len: int | None = None
    choices: tuple = ()

    def describe(self, default: Any) -> str:
        """What the parameter must be, in words: ``"a list of 2 to 8 ints in [1, 4096]"``."""
        if isinstance(default, str):
            return "one of " + ", ".join(map(repr, self.choices)) if self.choices else "a string"
        if isinstance(default, (list, tuple)):
            elem = type(default[0]) if default else float
            items = self._describe_number(elem, plural=True)
            if self.max_len is None:
                count = "a non-empty list of" if self.min_len <= 1 else f"a list of at least {self.min_len}"
            elif self.max_len == self.min_len:
                count = f"a list of {self.min_len}"
            else:
                count = f"a list of {self.min_len} to {self.max_len}"
            return f"{count} {items}"
        return self._describe_number(type(default), plural=False)

    def _describe_number(self, kind: type, plural: bool) -> str:
        if self.choices:
            return ("values each " if plural else "") + "one of " + ", ".join(map(str, self.choices))
        if kind is bool:
            return "bools" if plural else "a bool"
        if kind is str:
            return "strings" if plural else "a string"
        name = {int: "int", float: "float"}[kind]
        noun = f"{name}s" if plural else f"an {name}" if name == "int" else f"a {name}"
        if kind is float and self.low is None and self.high is None:
            return f"finite {noun}" if plural else f"a finite {name}"
        if self.low is None and self.high is None:
            return noun
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{noun} in [{low}, {high}]"

    def _number_ok(self, x: Any) -> bool:
        if isinstance(x, (bool, str)):
            return True
        if self.choices and x not in self.choices:
            return False
        if isinstance(x, float) and not math.isfinite(x):
            return False
        return (self.low is None or x >= self.low) and (self.high is None or x <= self.high)

    def check(self, owner: str, key: str, value: Any, default: Any) -> None:
        """Raise the udl template ``ValueError`` unless ``value`` lies within the limit."""
        if isinstance(default, str):
            ok = not self.choices or value in self.choices
        elif isinstance(default, (list, tuple)):
            ok = (len(value) >= self.min_len and (self.max_len is None or len(value) <= self.max_len)
                  and all(self._number_ok(x) for x in value))
        else:
            ok = self._number_ok(value)
        if not ok:
            shown = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else repr(value)
            raise ValueError(f"The {key!r} parameter of {owner} must be {self.describe(default)}. "
                             f"Got {shown or '(empty)'} instead.")


_NO_LIMIT = Limit()


def as_limit(value: Any) -> Limit:
    """A :class:`Limit` from a ``Limit`` or a ``(low, high)`` pair."""
    if isinstance(value, Limit):
        return value
    if isinstance(value, tuple) and len(value) == 2 and all(v is None or is_real(v) for v in value):
        return Limit(*value)
    raise TypeError(f"a parameter limit must be a Limit or a (low, high) pair, got {value!r}")


def parse_value(key: str, text: str, default: Any) -> Any:
    """Parse ``--set key=text`` to the type of the declared default, or raise ValueError."""
    kind = type(default)
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind in (int, float):
            value = float(text) if kind is float else int(text, 10)
            if kind is float and not math.isfinite(value):
                raise ValueError
            return value
        if kind in (list, tuple):
            elem = type(default[0]) if default else float
            parts = [parse_value(key, t, elem()) for t in text.split(",") if t.strip()]
            return kind(parts)
        return text
    except ValueError:
        if kind in (list, tuple):
            elem = type(default[0]).__name__ if default else "float"
            wanted = f"a comma-separated list of {elem}"
        else:
            wanted = {"bool": "a bool (true/false)", "int": "an int", "float": "a float"}.get(kind.__name__, kind.__name__)
        raise ValueError(f"--set {key}: expected {wanted}, got {text!r}") from None


def check_value(key: str, value: Any, default: Any) -> Any:
    """A value for parameter ``key``: strings are parsed, other values type-checked."""
    if isinstance(value, str) and not isinstance(default, str):
        return parse_value(key, value, default)
    kind = type(default)
    if kind is float and is_real(value):
        return float(value)
    if kind is int and is_int(value):  # NumPy integers too
        return int(value)
    if kind in (list, tuple) and isinstance(value, (list, tuple)):
        elem = type(default[0]) if default else float
        try:
            return kind(check_value(key, v, elem()) for v in value)
        except TypeError:
            raise TypeError(f"parameter {key!r} must be a list of {elem.__name__}, got {value!r}") from None
    if type(value) is kind:
        return value
    raise TypeError(f"parameter {key!r} must be {kind.__name__}, got {type(value).__name__} ({value!r})")


# --------------------------------------------------------------------------- specs
@dataclass
class FigureSpec:
    """A registered figure: its id, words, parameters per preset and three functions."""

    id: str
    title: str
    caption: str
    params: dict[str, dict[str, Any]]
    compute: Callable[[Params, Any], Result]
    draw_fn: Callable[[Result], Any] | None = None
    checks_fn: Callable[[Result], list[Check]] | None = None
    gpu: bool = False  # the full preset is faithful only with a GPU (and uses one when present)
    limits: dict[str, Limit] = field(default_factory=dict)  # the values each parameter may take
    requires_fn: Callable[[Params], None] | None = None  # checks that relate parameters

    @property
    def chapter(self) -> int | str:
        return chapter_of(self.id)

    @property
    def module(self) -> str:
        return self.compute.__module__

    @property
    def function(self) -> str:
        return self.compute.__qualname__

    # decorators that attach the drawing and the checks
    def plot(self, fn: Callable[[Result], Any]) -> Callable[[Result], Any]:
        self.draw_fn = fn
        return fn

    def checks(self, fn: Callable[[Result], list[Check]]) -> Callable[[Result], list[Check]]:
        self.checks_fn = fn
        return fn

    def requires(self, fn: Callable[[Params], None]) -> Callable[[Params], None]:
        """Attach a check of how parameters relate (``warmup < steps``): ``fn(p)`` raises
        ``ValueError`` in udl's template, naming the parameters, when they do not fit.
        Limits on single parameters belong in ``figure(limits=...)``."""
        self.requires_fn = fn
        return fn

    def draw(self, result: Result):
        if self.draw_fn is None:
            raise NotImplementedError(f"figure {self.id} has no drawing")
        return self.draw_fn(result)

    def check(self, result: Result) -> list[Check]:
        if self.checks_fn is None:
            raise NotImplementedError(f"figure {self.id} declares no checks")
        checks = list(self.checks_fn(result))
        if not checks or not all(isinstance(c, Check) for c in checks):
            raise TypeError(f"figure {self.id}: checks must be a non-empty list of Check")
        return checks

    def resolve(self, preset: str, overrides: dict[str, str] | None = None) -> dict[str, Any]:
        """The parameters for ``preset`` with ``--set`` overrides parsed to their types."""
        check_choice(preset, "preset", "FigureSpec.resolve", PRESETS)
        values = dict(self.params[preset])
        for key, text in (overrides or {}).items():
            if key not in values:
                names = ", ".join(sorted(values)) or "(none)"
                raise ValueError(f"figure {self.id} has no parameter {key!r}; its parameters: {names}")
            values[key] = check_value(key, text, values[key])
        self.check_limits(values, preset)
        return values

    def check_limits(self, values: dict[str, Any], preset: str = "tiny") -> None:
        """Raise the udl template ``ValueError`` for the first value outside its :class:`Limit`
        (floats must be finite even where no limit is declared)."""
        defaults = self.params[preset]
        for key, value in values.items():
            self.limits.get(key, _NO_LIMIT).check(f"figure {self.id}", key, value, defaults[key])
        if self.requires_fn is not None:
            self.requires_fn(Params(values))


REGISTRY: dict[str, FigureSpec] = {}
_ID = re.compile(r"^(\d{1,2}|[A-C])\.[0-9a-z][0-9a-z-]*$")


def chapter_of(fig_id: str) -> int | str:
    """``"10.6" -> 10``, ``"C.1" -> "C"``."""
    head = fig_id.split(".", 1)[0]
    return int(head) if head.isdigit() else head


def sort_key(fig_id: str) -> tuple:
    """Book order: chapters 1..21, then appendices; numbered figures before named ones."""
    head, tail = fig_id.split(".", 1)
    chapter = (0, int(head)) if head.isdigit() else (1, ord(head))
    return (*chapter, (0, int(tail), "") if tail.isdigit() else (1, 0, tail))


def figure(fig_id: str, *, title: str, caption: str, params: dict[str, dict[str, Any]],
           limits: dict[str, Limit | tuple] | None = None, gpu: bool = False):
    """Register the decorated function as the computation of figure ``fig_id``.

    Args:
        fig_id: the book's figure number (``"3.5"``) or ``"<chapter>.<name>"``.
        title: a short title.
        caption: what the figure shows and claims, in udl's own words.
        params: ``{"tiny": {...}, "full": {...}}`` with the same keys in each preset;
            values are bool, int, float, str or lists of them (their types are the
            types ``--set`` parses to).
        limits: for each int, float or list parameter, the values it may take
            (a :class:`Limit`, or a ``(low, high)`` pair); ``udl figure --set`` and
            ``udl.figure(...)`` refuse other values before computing. Both presets'
            values must lie within.
        gpu: the ``full`` preset needs a GPU to be faithful and uses one when present.

    Returns a decorator that returns the :class:`FigureSpec`; attach the drawing and
    the checks with ``@spec.plot`` and ``@spec.checks``.
    """
    if not _ID.match(fig_id):
        raise ValueError(f"The 'fig_id' parameter of figure must look like '3.5' or '8.cv'. Got {fig_id!r} instead.")
    if set(params) != set(PRESETS):
        raise ValueError(f"figure {fig_id}: params must have exactly the presets {PRESETS}, got {sorted(params)}")
    keys = [set(v) for v in params.values()]
    if keys[0] != keys[1]:
        raise ValueError(f"figure {fig_id}: presets declare different parameters: {sorted(keys[0] ^ keys[1])}")
    for preset, values in params.items():
        for key, value in values.items():
            tiny_value = params["tiny"][key]
            ok = isinstance(value, _PARAM_TYPES + (list, tuple))
            if not ok or type(value) is not type(tiny_value):
                raise TypeError(f"figure {fig_id}: parameter {key!r} must have one type "
                                f"(bool, int, float, str or list) in every preset")

    limits = {key: as_limit(value) for key, value in (limits or {}).items()}
    unknown = sorted(set(limits) - set(params["tiny"]))
    if unknown:
        raise ValueError(f"figure {fig_id}: limits name unknown parameters: {', '.join(unknown)}")

    def register(compute: Callable) -> FigureSpec:
        if fig_id in REGISTRY and REGISTRY[fig_id].function != compute.__qualname__:
            raise ValueError(f"figure {fig_id} is registered twice")
        spec = FigureSpec(fig_id, title, caption, params, compute, gpu=gpu, limits=limits)
        for preset in PRESETS:  # the presets themselves must be valid values
            spec.check_limits(params[preset], preset)  # (``requires`` is checked by the tests)
        REGISTRY[fig_id] = spec
        return spec

    return register


def load_all() -> dict[str, FigureSpec]:
    """Import every figure module (once) and return the registry in book order."""
    import importlib
    import pkgutil

    import udl.figures as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{info.name}")
    return {k: REGISTRY[k] for k in sorted(REGISTRY, key=sort_key)}


def get(fig_id: str) -> FigureSpec:
    """The spec of ``fig_id``; an unknown id raises ``KeyError`` naming the closest ids."""
    specs = load_all()
    if fig_id in specs:
        return specs[fig_id]
    import difflib

    close = difflib.get_close_matches(fig_id, list(specs), n=3, cutoff=0.5)
    if not close:  # fall back to the same chapter
        close = [k for k in specs if k.split(".")[0] == fig_id.split(".")[0]][:5]
    hint = f"; did you mean {', '.join(close)}?" if close else "; `udl list` shows them all"
    raise UnknownFigure(f"unknown figure {fig_id!r}{hint}", tuple(close))


class UnknownFigure(KeyError):
    """A figure id that is not registered; ``suggestions`` holds the closest ids."""

    def __init__(self, message: str, suggestions: tuple[str, ...] = ()):
        super().__init__(message)
        self.suggestions = suggestions

    def __str__(self) -> str:
        return self.args[0]


__all__ = ["Check", "Limit", "Result", "tally", "Params", "FigureSpec", "figure", "REGISTRY", "load_all", "get",
           "chapter_of", "sort_key", "to_jsonable", "parse_value", "UnknownFigure"]
