"""Run a registered figure: parameters, seeds, device, cache, checks and the record.

``run_figure`` is what ``udl figure`` and ``udl.figure(...)`` call; ``write_record``
writes ``<id>.json`` and ``<id>.png``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import platform
import random
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from udl import __version__, carbon
from udl.cache import atomic_write, cache_dir, read_entry, source_digest, warn_unusable
from udl.devices import resolve_device, using_cpu_threads
from udl.registry import PRESETS, Check, Params, Result, UnknownFigure, get, to_jsonable
from udl.validate import check_choice, check_int


# --------------------------------------------------------------------------- run context
@dataclass
class Run:
    """What a figure's computation receives besides its parameters.

    Attributes:
        seed: the run's seed; every random number of the figure derives from it.
        device: where to compute (``cpu`` or ``cuda``).
        preset: ``"tiny"`` or ``"full"``.
        rng: a NumPy generator seeded with ``seed``.
    """

    seed: int
    device: torch.device
    preset: str
    rng: np.random.Generator

    def generator(self, offset: int = 0) -> torch.Generator:
        """A CPU ``torch.Generator`` seeded with ``seed + offset``."""
        return torch.Generator().manual_seed(self.seed + offset)

    def progress(self, iterable: Iterable | None = None, **kwargs):
        """A tqdm bar shown on a terminal and silent in logs (``total=``, ``desc=``...)."""
        from tqdm.auto import tqdm

        kwargs.setdefault("leave", False)
        kwargs.setdefault("disable", None)  # None: off when stderr is not a terminal
        return tqdm(iterable, **kwargs)


MAX_SEED = 2**32 - 1  # a figure derives further seeds as seed + offset; torch takes up to 2**64 - 1


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch global generators (for code that uses them)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --------------------------------------------------------------------------- cache
@functools.lru_cache(maxsize=1)
def code_hash() -> str:
    """The hash of udl's installed source: any change to the library or a figure changes it."""
    return f"{__version__}-{source_digest(Path(__file__).resolve().parent)}"


def cache_key(fig_id: str, preset: str, params: dict, seed: int, device: torch.device) -> str:
    blob = json.dumps({"id": fig_id, "preset": preset, "params": to_jsonable(params), "seed": seed,
                       "device": device.type, "code": code_hash(), "torch": torch.__version__},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _cache_path(fig_id: str, key: str) -> Path:
    return cache_dir() / f"{fig_id}-{key}.npz"


def save_cached(result: Result, key: str) -> bool:
    """Store metrics and arrays (no pickles) atomically; False if they cannot be stored (a warning says why)."""
    meta = {"metrics": to_jsonable(result.metrics), "notes": result.notes,
            "seconds": result.seconds, "device": result.device, "energy": energy_of(result)}
    arrays = {f"a_{k}": np.asarray(v) for k, v in result.arrays.items()}
    if any(a.dtype == object for a in arrays.values()):
        return False
    buffer = io.BytesIO()
    np.savez(buffer, __meta__=np.array(json.dumps(meta)), **arrays)
    path = _cache_path(result.id, key)
    try:
        atomic_write(path, buffer.getvalue())
    except OSError as error:  # the result is what matters; the cache only saves time
        warn_unusable("figure cache", "written", path, error)
        return False
    return True


def load_cached(fig_id: str, key: str) -> Result | None:
    """The stored result, or None when absent or unreadable (a warning); a corrupted entry is removed."""
    path = _cache_path(fig_id, key)
    blob = read_entry(path, "figure cache")
    if blob is None:
        return None
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            meta = json.loads(str(data["__meta__"]))
            arrays = {k[2:]: data[k] for k in data.files if k.startswith("a_")}
        result = Result(metrics=meta["metrics"], arrays=arrays, notes=meta["notes"],
                        seconds=float(meta["seconds"]), device=meta["device"], cached=True)
        result.energy = meta.get("energy") or carbon.not_measured("cached before udl measured energy")
        return result
    except Exception:  # any damage: recompute instead of crashing
        with contextlib.suppress(OSError):  # if it stays, the new entry replaces it (or a warning says why not)
            path.unlink()
        return None


# --------------------------------------------------------------------------- running
def run_figure(fig_id: str, preset: str = "full", *, seed: int = 0, device: str | torch.device = "auto",
               overrides: dict[str, Any] | None = None, cache: bool = True) -> Result:
    """Compute figure ``fig_id`` (or reuse the cached result) and measure its checks.

    Args:
        fig_id: a figure id as ``udl list`` shows it, e.g. ``"3.5"``.
        preset: ``"tiny"`` (seconds, for tests) or ``"full"`` (faithful to the book).
        seed: the seed of every random number in the figure.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        overrides: parameter values replacing the preset's (strings are parsed to the
            declared type, as ``--set`` does).
        cache: reuse a stored result for the same code, preset, parameters and seed.

    Returns:
        The :class:`~udl.registry.Result`; ``result.plot()`` draws it.
    """
    owner = "run_figure"
    try:
        spec = get(fig_id)
    except UnknownFigure as error:
        near = f", such as {' or '.join(error.suggestions)}" if error.suggestions else ""
        raise ValueError(f"The 'fig_id' parameter of {owner} must be a figure id that `udl list` shows{near}. "
                         f"Got {fig_id!r} instead.") from None
    seed = check_int(seed, "seed", owner, minimum=0, maximum=MAX_SEED)
    check_choice(preset, "preset", owner, PRESETS)
    values = spec.resolve(preset, overrides)
    dev = resolve_device(device, owner=owner)
    key = cache_key(spec.id, preset, values, seed, dev)
    result = load_cached(spec.id, key) if cache else None
    if result is None:
        seed_everything(seed)
        run = Run(seed=seed, device=dev, preset=preset, rng=np.random.default_rng(seed))
        with carbon.measuring() as energy:  # never raises; a failure to measure is a warning
            start = time.perf_counter()
            with using_cpu_threads():  # one thread unless $UDL_NUM_THREADS says otherwise
                result = spec.compute(Params(values), run)
            seconds = time.perf_counter() - start
        if not isinstance(result, Result):
            raise TypeError(f"figure {spec.id}: the computation must return a Result, got {type(result).__name__}")
        result.seconds = seconds
        result.energy = dict(energy)
        result.device = dev.type
        result.id = spec.id
        if cache:
            save_cached(result, key)
    result.id, result.preset, result.seed, result.params = spec.id, preset, seed, values
    result.checks = spec.check(result)
    return result


def energy_of(result: Result) -> dict:
    """The energy entry of a result (the run that computed it, also when it comes from the cache)."""
    return to_jsonable(result.energy or carbon.not_measured("computed outside run_figure"))


def versions() -> dict[str, str]:
    import matplotlib

    return {"udl": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "matplotlib": matplotlib.__version__, "python": platform.python_version()}


def record(result: Result) -> dict:
    """The JSON record of a computed figure (schema in DESIGN.md, plus words and provenance)."""
    spec = result.spec
    return {"id": spec.id, "title": spec.title, "chapter": spec.chapter, "preset": result.preset,
            "seed": result.seed, "params": to_jsonable(result.params), "metrics": to_jsonable(result.metrics),
            "checks": [c.to_dict() for c in result.checks], "seconds": round(result.seconds, 4),
            "device": result.device, "energy": energy_of(result), "versions": versions(), "caption": spec.caption,
            "notes": result.notes,
            "module": spec.module, "function": spec.function, "cached": result.cached,
            "ok": result.ok}


def failure_record(fig_id: str, preset: str, seed: int, error: BaseException, seconds: float) -> dict:
    """The record of a figure whose computation or drawing raised: one failed check."""
    try:
        spec = get(fig_id)
        words = {"title": spec.title, "chapter": spec.chapter, "caption": spec.caption,
                 "module": spec.module, "function": spec.function}
    except KeyError:
        words = {"title": fig_id, "chapter": fig_id.split(".")[0], "caption": "", "module": "", "function": ""}
    message = f"{type(error).__name__}: {error}"
    return {"id": fig_id, **words, "preset": preset, "seed": seed, "params": {}, "metrics": {},
            "checks": [Check("the figure computes and draws without error", message, "no error", False).to_dict()],
            "seconds": round(seconds, 4), "device": "", "energy": carbon.not_measured("the figure failed"),
            "versions": versions(), "notes": "",
            "cached": False, "ok": False, "error": message,
            "traceback": relative_paths("".join(traceback.format_exception(type(error), error,
                                                                          error.__traceback__)))[-4000:]}


def _path_roots() -> list[tuple[str, str]]:
    """Folders whose prefix a traceback drops, longest first, with what replaces it."""
    import sysconfig

    roots = [(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "")]  # src/: udl/runner.py
    for key in ("purelib", "platlib", "stdlib", "platstdlib"):
        with contextlib.suppress(KeyError):
            roots.append((os.path.realpath(sysconfig.get_paths()[key]), ""))
    roots += [(os.path.realpath(os.getcwd()), ""), (os.path.realpath(os.path.expanduser("~")), "~/")]
    roots = [(r, s) for r, s in roots if r not in ("", os.sep)]
    return sorted(set(roots), key=lambda rs: -len(rs[0]))


def relative_paths(text: str) -> str:
    """``text`` (a traceback) with absolute paths made relative: udl's files from the folder above
    the package (``udl/runner.py``), installed packages from site-packages (``torch/nn/...``), the
    standard library from its folder, the working folder dropped; any other absolute path keeps its
    last two parts (``.../tests/fakes.py``). Records and pages then name no machine's folders."""
    import re

    for root, shown in _path_roots():
        for variant in {root, os.path.abspath(root)}:
            text = text.replace(variant + os.sep, shown)
    return re.sub(r"(?<![\w.~])/(?:[^\s\"'/:]+/)+([^\s\"'/:]+/[^\s\"'/:]+)", r".../\1", text)


def write_outputs(result: Result, out: str | Path, dpi: int = 110) -> dict:
    """Write ``<out>/<id>.png`` and ``<out>/<id>.json``; return the record."""
    import matplotlib.pyplot as plt

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fig = result.plot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    atomic_write(out / f"{result.id}.png", buf.getvalue())
    rec = record(result)
    atomic_write(out / f"{result.id}.json", json.dumps(rec, indent=1).encode())
    return rec


_PACKAGE = os.path.dirname(os.path.realpath(__file__)) + os.sep


def one_line_warnings() -> None:
    """Show the warnings raised by udl's own code as one line, ``udl: warning: <message>``.

    For the command line and its worker processes: a warning from udl (an unusable
    cache, more processes than CPUs) is news for the user, not a location in the code.
    Warnings from other libraries keep Python's format. Calling it again changes nothing.
    """
    shown_by = warnings.showwarning
    if getattr(shown_by, "udl_one_line", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if os.path.realpath(filename).startswith(_PACKAGE):
            print(f"udl: warning: {message}", file=file or sys.stderr)
        else:
            shown_by(message, category, filename, lineno, file, line)

    show.udl_one_line = True
    warnings.showwarning = show


def run_and_write(fig_id: str, preset: str, seed: int, device: str, overrides: dict | None,
                  cache: bool, out: str | Path) -> dict:
    """Compute, draw and write one figure; a failure becomes a failed record, never an exception."""
    start = time.perf_counter()
    try:
        result = run_figure(fig_id, preset, seed=seed, device=device, overrides=overrides, cache=cache)
        return write_outputs(result, out)
    except Exception as error:  # noqa: BLE001 - one failing figure must not stop the others
        rec = failure_record(fig_id, preset, seed, error, time.perf_counter() - start)
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{fig_id}.png").unlink(missing_ok=True)
        atomic_write(out / f"{fig_id}.json", json.dumps(rec, indent=1).encode())
        return rec
