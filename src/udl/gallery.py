"""``udl gallery``: compute every figure and gather them in a static site that works offline.

The site lives in the output folder beside the records: ``index.html`` (contents by
chapter, a card per figure, search and filters by a small inline script) and a page
per figure, ``<id>.html`` (picture, caption, notes, checks, every metric, the
parameters against the preset's defaults and allowed ranges, the command that
reproduces it, links and the highlighted source of the code that computed it).
Everything a page needs is inline or beside it: no network.

The index is written before the first figure starts (every figure queued) and
rewritten, atomically, as each one starts and finishes, with a progress bar and an
estimate of the time left from the recorded timings (:mod:`udl.schedule`). A run
for some chapters keeps the records of the other figures already in the folder.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import json
import os
import re
import shlex
import struct
import threading
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path

from udl.cache import atomic_write, writable_folder
from udl.registry import REGISTRY, Limit, chapter_of, load_all, sort_key, tally, to_jsonable
from udl.validate import check_int

CHAPTERS = {
    1: "Introduction", 2: "Supervised learning", 3: "Shallow neural networks", 4: "Deep neural networks",
    5: "Loss functions", 6: "Fitting models", 7: "Gradients and initialization", 8: "Measuring performance",
    9: "Regularization", 10: "Convolutional networks", 11: "Residual networks", 12: "Transformers",
    13: "Graph neural networks", 14: "Unsupervised learning", 15: "Generative adversarial networks",
    16: "Normalizing flows", 17: "Variational autoencoders", 18: "Diffusion models",
    19: "Reinforcement learning", 20: "Why does deep learning work?", 21: "Deep learning and ethics",
    "A": "Notation", "B": "Mathematics", "C": "Probability",
}

_FIGURES = Path(__file__).resolve().parent / "figures"


# --------------------------------------------------------------------------- building
def build_gallery(preset: str = "full", out: str | Path = "udl-out", *, jobs: int | str = "auto", chapters=None,
                  seed: int = 0, device: str = "auto", cache: bool = True) -> dict:
    """Compute every figure (optionally only some chapters) and write the records and the site.

    A failing figure is recorded as failed and the others still run. ``index.html`` is
    written first (every figure queued), then rewritten as figures start and finish;
    records already in ``out`` of figures outside this run are kept and shown, records of
    figures that are no longer registered are left out.

    Args:
        preset: ``"tiny"`` or ``"full"``.
        out: the output folder.
        jobs: figures computed in parallel, each in its own process (one torch thread each
            unless ``$UDL_NUM_THREADS`` says otherwise); ``"auto"``: the usable CPUs
            (:func:`udl.schedule.resolve_jobs`). At most one process per figure; more than
            the CPUs is allowed, with a warning. The longest figures start first on all
            lanes but one, which takes the quickest first (:class:`udl.schedule.Scheduler`).
        chapters: chapter numbers (or ``"C"``) to include; all when None.
        seed, device, cache: as for :func:`udl.runner.run_figure`.

    Returns:
        A summary of every figure shown (this run's and the kept ones): figures, passed and
        failed checks, failed figures, seconds, ok.

    Raises:
        ValueError: ``out`` is not a folder where files can be written, or ``jobs`` is not a
            positive int or ``"auto"`` (before any work).
    """
    start = time.perf_counter()
    jobs = _resolve_jobs(jobs)
    out = writable_folder(out, "out", "build_gallery")
    when = time.strftime("%Y-%m-%d %H:%M")
    # the first view: figures listed from the source, before the figure modules are imported
    declared = listed_figures()
    listed = [f for f in declared if chapters is None or f["chapter"] in chapters]
    if listed:  # records of figures no longer declared are dropped here too, as after the registry is loaded
        kept = {i: r for i, r in read_records(out, {f["id"] for f in declared}).items()
                if i not in {f["id"] for f in listed}}
        _write_index(out, _placeholders(listed, kept, preset, seed), preset, when, progress=(0, len(listed), None))

    from udl.runner import one_line_warnings, run_and_write

    specs = load_all()
    ids = [i for i, s in specs.items() if chapters is None or s.chapter in chapters]
    processes = min(jobs, max(len(ids), 1))  # one per figure at most
    cpus = os.cpu_count() or 1
    if processes > cpus:
        warnings.warn(f"jobs={jobs} runs {processes} processes on {cpus} CPUs: they share the CPUs, so the "
                      f"gallery is no faster than with jobs={cpus}, and each process holds its own memory",
                      stacklevel=1)
    expected = _expected_seconds(ids, preset, out)
    scheduler = _scheduler(expected, processes)
    kept = {i: r for i, r in read_records(out, registered=specs).items() if i not in ids}
    records = {**kept, **{i: _queued(specs[i], preset, seed) for i in ids}}
    sources: dict = {}

    lock = threading.RLock()  # the records and the scheduler, shared with the index writer's timer

    def render_now():
        with lock:
            done = sum(1 for i in ids if records[i].get("status") not in ("queued", "running"))
            progress = (done, len(ids), scheduler.eta()) if done < len(ids) else None
            _write_index(out, records, preset, when, progress=progress)

    index = _Throttled(render_now, INDEX_INTERVAL)

    def begin(fig_id: str) -> None:
        with lock:
            scheduler.started(fig_id)
            records[fig_id] = {**records[fig_id], "status": "running"}

    def finished(fig_id: str, begun: float, rec: dict) -> None:
        with lock:
            scheduler.finished(fig_id, time.perf_counter() - begun, cached=bool(rec.get("cached")))
            records[rec["id"]] = rec
            order = _order(records)
        _write_page(out, rec, order, sources)
        bar.update()
        index.request()

    index.request()
    from tqdm.auto import tqdm

    try:
        with tqdm(total=len(ids), desc=f"udl gallery ({preset})", unit="fig", disable=None) as bar:
            if processes == 1:
                while (fig_id := scheduler.next(0)) is not None:
                    begin(fig_id)
                    index.request()
                    bar.set_postfix_str(fig_id)
                    begun = time.perf_counter()
                    finished(fig_id, begun, run_and_write(fig_id, preset, seed, device, None, cache, out))
            else:
                with ProcessPoolExecutor(processes, mp_context=get_context("spawn"),
                                         initializer=one_line_warnings) as pool:
                    running: dict = {}  # future -> (lane, figure id, start)

                    def fill():
                        busy = {lane for lane, _, _ in running.values()}
                        for lane in range(processes):
                            if lane in busy:
                                continue
                            with lock:
                                fig_id = scheduler.next(lane)
                            if fig_id is None:
                                continue
                            begin(fig_id)
                            future = pool.submit(run_and_write, fig_id, preset, seed, device, None, cache, out)
                            running[future] = (lane, fig_id, time.perf_counter())
                        index.request()

                    fill()
                    while running:
                        done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                        for future in done:
                            _, fig_id, begun = running.pop(future)
                            finished(fig_id, begun, future.result())
                        fill()
    except BaseException:  # interrupted, or a worker died: the page stops announcing a run
        index.close()
        with lock, contextlib.suppress(Exception):  # the first error is the one to report
            _write_index(out, records, preset, when, progress=None)
        raise
    index.close()
    mine = [records[i] for i in ids]
    shown = [records[i] for i in _order(records)]
    summary = summarize(shown, preset, time.perf_counter() - start, mine)
    write_site(out, shown, summary, when=when, sources=sources, pages=[i for i in records if i not in ids])
    atomic_write(out / "summary.json", json.dumps(summary, indent=1).encode())
    return summary


def summarize(records: list[dict], preset: str, seconds: float, computed: list[dict] | None = None) -> dict:
    """The summary of the figures shown: counts over every record, times over this run's (``computed``)."""
    computed = records if computed is None else computed
    summary = {
        "figures": len(records),
        **{k: sum(tally(r["checks"])[k] for r in records) for k in ("passed", "failed", "not_tested")},
        "failed_figures": [r["id"] for r in records if not r["ok"]],
        "seconds": seconds,
        "compute_seconds": sum(r["seconds"] for r in computed),
        "computed_figures": len(computed),
        "preset": preset,
        "energy": energy_summary(records),
    }
    summary["ok"] = not summary["failed_figures"]
    return summary


def energy_summary(records: list[dict]) -> dict:
    """The gallery's energy: the sums over the figures whose energy was measured, and the others named.

    A cached figure counts with the energy of the run that computed it. ``methods``
    lists the distinct measurement methods (one, unless records come from several
    machines) and ``grid_g_per_kwh`` the intensities used.
    """
    measured = [r for r in records if (r.get("energy") or {}).get("measured")]
    return {"kwh": sum(r["energy"]["kwh"] for r in measured),
            "co2_kg": sum(r["energy"]["co2_kg"] for r in measured),
            "measured_figures": len(measured),
            "measured_seconds": sum(r["energy"]["seconds"] for r in measured),
            "not_measured": [r["id"] for r in records if r not in measured],
            "grid_g_per_kwh": sorted({r["energy"]["grid_g_per_kwh"] for r in measured}),
            "methods": sorted({r["energy"]["method"] for r in measured})}


def read_records(out: str | Path, registered: dict | None = None) -> dict[str, dict]:
    """The figure records (``<id>.json``) already in ``out``, by id.

    Files that are not records (``summary.json``, damaged files, a record whose id is not
    its file name) are skipped; with ``registered`` (the registry), so are records of
    figures that are no longer registered.
    """
    found = {}
    for path in Path(out).glob("*.json"):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(rec, dict) or rec.get("id") != path.stem or not isinstance(rec.get("checks"), list):
            continue
        if registered is not None and rec["id"] not in registered:
            continue
        rec.setdefault("chapter", chapter_of(rec["id"]))
        found[rec["id"]] = rec
    return found


INDEX_INTERVAL = 2.0  # seconds: the index is rewritten at most this often while figures run (each costs ~0.05 s)


class _Throttled:
    """Call ``fn`` at most once per ``interval`` seconds: a request within the interval is done by a timer
    at its end (so the last state is always written), and :meth:`close` cancels what is pending."""

    def __init__(self, fn, interval: float):
        self.fn, self.interval = fn, interval
        self.last = -float("inf")
        self.timer: threading.Timer | None = None  # the pending call
        self.started: threading.Timer | None = None  # the last timer started
        self.closed = False
        self.lock = threading.Lock()

    def request(self) -> None:
        with self.lock:
            if self.timer is not None or self.closed:  # a write is already due
                return
            wait_for = self.last + self.interval - time.monotonic()
            if wait_for > 0:
                self.timer = self.started = threading.Timer(wait_for, self._run)
                self.timer.daemon = True
                self.timer.start()
                return
            self.last = time.monotonic()
            self.fn()

    def _run(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.timer = None
            self.last = time.monotonic()
            self.fn()  # under the lock: close() waits for it

    def close(self) -> None:
        """Cancel a pending call and wait for one that is running (nothing is written after this)."""
        with self.lock:
            self.closed = True
            timer, self.timer = self.started, None
        if timer is not None:
            timer.cancel()
            timer.join()


def _resolve_jobs(jobs) -> int:
    try:
        from udl.schedule import resolve_jobs
    except ImportError:  # pragma: no cover - udl.schedule lands with the same issue
        if jobs == "auto":
            return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return check_int(jobs, "jobs", "build_gallery", minimum=1)
    return resolve_jobs(jobs) if jobs == "auto" else check_int(jobs, "jobs", "build_gallery", minimum=1)


def _expected_seconds(ids: list[str], preset: str, out: Path) -> dict[str, float]:
    try:
        from udl.schedule import expected_seconds
    except ImportError:  # pragma: no cover
        return dict.fromkeys(ids, 1.0)
    return expected_seconds(ids, preset, out)


class _Quickest:
    """Quickest first on every lane: stands in for :class:`udl.schedule.Scheduler` until it lands."""

    def __init__(self, expected: dict, processes: int):
        self.left = sorted(expected, key=lambda i: (expected[i], sort_key(i)))
        self.expected, self.running, self.processes = dict(expected), {}, processes

    def next(self, lane: int):
        return self.left.pop(0) if self.left else None

    def started(self, fig_id):
        self.running[fig_id] = time.perf_counter()

    def finished(self, fig_id, seconds):
        self.running.pop(fig_id, None)

    def eta(self, now=None):
        now = time.perf_counter() if now is None else now
        rest = [max(self.expected[i] - (now - t), 0.0) for i, t in self.running.items()]
        work = sum(self.expected[i] for i in self.left) + sum(rest)
        return max(work / max(self.processes, 1), max(rest, default=0.0))


def _scheduler(expected: dict, processes: int):
    try:
        from udl.schedule import Scheduler
    except ImportError:  # pragma: no cover
        return _Quickest(expected, processes)
    return Scheduler(expected, processes)


_DECORATOR = re.compile(r"^@figure\(.*?(?=^(?:def |async def |class |@))", re.M | re.S)


def listed_figures() -> list[dict]:
    """Every ``@figure("id", title=..., caption=...)`` in the figure modules' source, without importing them.

    Returns ``[{"id", "chapter", "title", "caption"}]`` in book order. For the first view
    of the index and quick checks of ``--chapter`` (importing every figure module takes
    seconds): only the decorators are parsed. The registry decides what is computed; a
    declaration that cannot be read is skipped (a test checks that none is).
    """
    found = []
    for path in sorted(_FIGURES.glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, ValueError):
            continue
        for match in _DECORATOR.finditer(text):
            try:
                call = ast.parse(match.group(0).strip()[1:], mode="eval").body
            except SyntaxError:
                continue
            if not (isinstance(call, ast.Call) and call.args and isinstance(call.args[0], ast.Constant)
                    and isinstance(call.args[0].value, str)):
                continue
            words = {}
            for kw in call.keywords:
                if kw.arg in ("title", "caption"):
                    try:
                        words[kw.arg] = str(ast.literal_eval(kw.value))
                    except ValueError:
                        words[kw.arg] = ""
            fig_id = call.args[0].value
            try:
                found.append({"id": fig_id, "chapter": chapter_of(fig_id), **words})
            except ValueError:
                continue
    return sorted(found, key=lambda f: sort_key(f["id"]))


def _queued(spec, preset: str, seed: int) -> dict:
    """The stand-in record of a figure not computed yet."""
    return {"id": spec.id, "title": spec.title, "chapter": spec.chapter, "caption": spec.caption, "notes": "",
            "preset": preset, "seed": seed, "params": to_jsonable(spec.params[preset]), "metrics": {}, "checks": [],
            "seconds": 0.0, "ok": False, "status": "queued", "module": spec.module, "function": spec.function}


def _placeholders(listed: list[dict], kept: dict, preset: str, seed: int) -> dict:
    records = dict(kept)
    for f in listed:
        records[f["id"]] = {"id": f["id"], "title": f.get("title", ""), "chapter": f["chapter"],
                            "caption": f.get("caption", ""), "notes": "", "preset": preset, "seed": seed,
                            "params": {}, "metrics": {}, "checks": [], "seconds": 0.0, "ok": False,
                            "status": "queued"}
    return records


def _order(records: dict) -> list[str]:
    return sorted(records, key=sort_key)


def status_of(rec: dict) -> str:
    """``"queued"``, ``"running"``, ``"passed"`` or ``"failed"``."""
    return rec.get("status") or ("passed" if rec.get("ok") else "failed")


def _write_index(out: Path, records: dict, preset: str, when: str, progress=None) -> None:
    shown = [records[i] for i in _order(records)]
    done = [r for r in shown if status_of(r) in ("passed", "failed")]
    summary = summarize(done, preset, 0.0)
    atomic_write(out / "index.html", render_index(shown, summary, when=when, progress=progress, out=out).encode())


def _write_page(out: Path, rec: dict, order: list[str], sources: dict) -> None:
    i = order.index(rec["id"])
    prev_id = order[i - 1] if i > 0 else None
    next_id = order[i + 1] if i + 1 < len(order) else None
    html = render_figure_page(rec, prev=prev_id, next=next_id, order=order, sources=sources, out=out)
    atomic_write(out / f"{rec['id']}.html", html.encode())


def write_site(out: str | Path, records: list[dict], summary: dict, *, when: str | None = None,
               sources: dict | None = None, pages=True) -> None:
    """Write ``<out>/index.html`` and ``<out>/<id>.html`` for every record.

    Args:
        out: the folder (the records' pictures are read from it for their sizes).
        records: figure records, in any order (the pages follow book order).
        summary: :func:`summarize` of ``records``.
        when: the time shown on the index.
        sources: a dict memoising the source blocks by figure id.
        pages: True: every figure's page; else the ids whose pages are written (the
            pages of the others are up to date).
    """
    out = Path(out)
    records = sorted(records, key=lambda r: sort_key(r["id"]))
    order = [r["id"] for r in records]
    sources = {} if sources is None else sources
    for rec in records:
        if pages is True or rec["id"] in pages:
            _write_page(out, rec, order, sources)
    atomic_write(out / "index.html", render_index(records, summary, when=when, out=out).encode())


# --------------------------------------------------------------------------- rendering
def _short(value) -> str:
    """A metric or check value as a short string."""
    value = to_jsonable(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        if not value:
            return "none"
        flat = json.dumps(value)
        if len(flat) > 80:
            return f"[{len(value)} values]"
        return ", ".join(_short(v) for v in value) if all(not isinstance(v, list) for v in value) else flat
    if isinstance(value, dict):
        flat = json.dumps(value)
        return flat if len(flat) <= 80 else f"{{{len(value)} entries}}"
    return str(value)


def _full(value) -> str:
    """A value in full (JSON for lists and dicts)."""
    value = to_jsonable(value)
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _chapter_label(key) -> str:
    return f"Chapter {key}" if isinstance(key, int) else f"Appendix {key}"


def _png_size(path: Path) -> tuple[int, int] | None:
    """Width and height from a PNG's header, or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    return struct.unpack(">II", head[16:24])


def _alt(rec: dict) -> str:
    caption = (rec.get("caption") or "").split(". ")[0].rstrip(".")
    head = f"Figure {rec['id']}, {rec.get('title', '')}"
    return f"{head}: {caption}." if caption else head


def _search_text(rec: dict) -> str:
    parts = [rec["id"], rec.get("title", ""), rec.get("caption", ""), rec.get("notes", "")]
    parts += [c.get("claim", "") for c in rec.get("checks", [])]
    return " ".join(p for p in parts if p).lower()


@functools.lru_cache(maxsize=1)
def _env():
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("udl", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["short"] = _short
    env.filters["full"] = _full
    env.globals.update(chapter_label=_chapter_label, status_of=status_of, alt=_alt, search_text=_search_text)
    return env


def _figure_view(rec: dict, out: Path | None) -> dict:
    size = _png_size(out / f"{rec['id']}.png") if out is not None else None
    return {"rec": rec, "status": status_of(rec), "size": size or (800, 600)}


def render_index(records: list[dict], summary: dict, *, when: str | None = None, progress=None,
                 out: str | Path | None = None) -> str:
    """The index page: contents by chapter, search and filters, a card per record.

    Args:
        records: figure records (as written by ``udl figure``), or stand-ins with
            ``"status": "queued" | "running"`` for figures not finished yet.
        summary: :func:`summarize` of the finished records.
        when: the time shown in the header.
        progress: ``(done, total, seconds_left)`` while a run is going, else None.
        out: the folder holding the pictures (for their sizes); None: a 800 x 600 default.
    """
    records = sorted(records, key=lambda r: sort_key(r["id"]))
    groups: dict = {}
    for rec in records:
        groups.setdefault(rec.get("chapter", chapter_of(rec["id"])), []).append(_figure_view(rec, _out(out)))
    chapters = [{"key": key, "name": CHAPTERS.get(key, ""), "figures": figs} for key, figs in groups.items()]
    eta = None
    if progress is not None and progress[2] is not None:
        eta = _duration(progress[2])
    return _env().get_template("gallery.html").render(chapters=chapters, summary=summary, progress=progress, eta=eta,
                                                      total=len(records),
                                                      when=when or time.strftime("%Y-%m-%d %H:%M"))


def render(records: list[dict], summary: dict) -> str:
    """The index page for finished ``records`` (kept for callers of the first gallery)."""
    return render_index(records, summary)


def _out(out):
    return Path(out) if out is not None else None


def _duration(seconds: float) -> str:
    seconds = max(float(seconds), 0.0)
    if seconds < 10:  # the figures running are past their recorded times, or nearly done
        return "a few seconds left"
    if seconds < 60:
        return f"about {max(round(seconds), 1)} s left"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min left"
    return f"about {seconds / 3600:.1f} h left"


def reproduce_command(rec: dict, spec=None) -> str:
    """``udl figure <id> --preset <p> --seed <s>`` and ``--set key=value`` for every parameter that
    differs from the preset's default."""
    preset, seed = rec.get("preset", "full"), rec.get("seed", 0)
    words = ["udl", "figure", rec["id"], "--preset", str(preset), "--seed", str(seed)]
    spec = _spec(rec["id"]) if spec is None else spec
    defaults = to_jsonable(spec.params.get(preset, {})) if spec is not None else {}
    for key, value in (rec.get("params") or {}).items():
        if key in defaults and to_jsonable(value) == defaults[key]:
            continue
        words += ["--set", f"{key}={_as_text(value)}"]
    return " ".join(shlex.quote(w) for w in words)


def _as_text(value) -> str:
    """A parameter value as ``--set`` parses it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_as_text(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def _spec(fig_id: str):
    spec = REGISTRY.get(fig_id)
    if spec is None:
        try:
            spec = load_all().get(fig_id)
        except Exception:  # noqa: BLE001 - a page renders without the registry's words
            spec = None
    return spec


def _param_rows(rec: dict, spec) -> list[dict]:
    preset = rec.get("preset", "full")
    rows = []
    for key, value in (rec.get("params") or {}).items():
        default = spec.params.get(preset, {}).get(key) if spec is not None else None
        allowed = ""
        if default is not None:
            allowed = spec.limits.get(key, Limit()).describe(default)
        rows.append({"name": key, "value": value, "default": default, "allowed": allowed,
                     "changed": default is not None and to_jsonable(value) != to_jsonable(default),
                     "kind": _kind(default if default is not None else value), "limit": _limit_of(spec, key)})
    return rows


def _kind(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, (list, tuple)):
        return "list"
    return "str"


def _limit_of(spec, key):
    if spec is None:
        return None
    return spec.limits.get(key)


def _sources(rec: dict, spec, cache: dict | None) -> list:
    """The source blocks of a figure's page, as dicts: from ``cache``, else from the disk (stored under
    :func:`udl.cache.cache_dir` for this version of udl's code), else from :func:`udl.sources.figure_sources`
    (Pygments costs a fraction of a second per figure; a second gallery pays nothing)."""
    if spec is None:
        return []
    if cache is not None and rec["id"] in cache:
        return cache[rec["id"]]
    path = _sources_path(rec["id"])
    blocks = None
    if path is not None:
        try:
            blocks = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            blocks = None
    if not isinstance(blocks, list):
        blocks = _find_sources(rec["id"], spec)
        if path is not None and blocks:
            try:
                atomic_write(path, json.dumps(blocks).encode())
            except OSError:  # the cache only saves time
                pass
    if cache is not None:
        cache[rec["id"]] = blocks
    return blocks


def _sources_path(fig_id: str) -> Path | None:
    try:
        from udl.cache import cache_dir
        from udl.runner import code_hash
    except ImportError:  # pragma: no cover
        return None
    return cache_dir() / "sources" / f"{fig_id}-{code_hash()}.json"


def _find_sources(fig_id: str, spec) -> list[dict]:
    try:
        from udl.sources import figure_sources
    except ImportError:  # pragma: no cover - udl.sources lands with the same issue
        return []
    try:
        found = figure_sources(spec)
    except Exception as error:  # noqa: BLE001 - a page without sources beats no page
        warnings.warn(f"the sources of figure {fig_id} could not be shown ({type(error).__name__}: {error})",
                      stacklevel=3)
        return []
    return [{"name": b.name, "kind": b.kind, "path": b.path, "line": b.line, "html": b.html,
             "omitted": getattr(b, "omitted", 0), "via": getattr(b, "via", "")} for b in found]


def _pygments_css() -> str:
    try:
        from udl.sources import pygments_css
    except ImportError:  # pragma: no cover
        return ""
    return pygments_css()


def render_figure_page(record: dict, *, spec=None, prev: str | None = None, next: str | None = None,  # noqa: A002
                       interactive: bool = False, order: list[str] | None = None, sources: dict | None = None,
                       out: str | Path | None = None) -> str:
    """The page of one figure: picture, caption, notes, checks, every metric, the parameters, the
    reproducing command, links and sources.

    Args:
        record: the figure's record (as written by ``udl figure``).
        spec: its :class:`~udl.registry.FigureSpec` (found in the registry when None; a
            record of an unregistered figure renders without defaults and sources).
        prev, next: the ids of the previous and next figure (None at the ends).
        interactive: add the form of ``udl serve`` (a field per parameter, recompute and
            cancel buttons, the job's progress, the one-line error and the results).
        order: every figure id shown, in book order, for the chapter links (the registry's
            when None).
        sources: a dict memoising the source blocks by figure id.
        out: the folder holding the picture (for its size).
    """
    spec = _spec(record["id"]) if spec is None else spec
    if order is None:
        order = sorted({*(REGISTRY if REGISTRY else {}), record["id"]}, key=sort_key)
    chapter = record.get("chapter", chapter_of(record["id"]))
    chapters = list(dict.fromkeys(chapter_of(i) for i in order))
    where = chapters.index(chapter) if chapter in chapters else -1
    first_of = {c: next_id for c, next_id in reversed([(chapter_of(i), i) for i in order])}
    prev_chapter = first_of[chapters[where - 1]] if where > 0 else None
    next_chapter = first_of[chapters[where + 1]] if 0 <= where < len(chapters) - 1 else None
    view = _figure_view(record, _out(out))
    return _env().get_template("figure.html").render(
        r=record, view=view, status=view["status"], chapter=chapter, chapter_name=CHAPTERS.get(chapter, ""),
        prev=prev, next=next, prev_chapter=prev_chapter, next_chapter=next_chapter,
        prev_chapter_key=chapter_of(prev_chapter) if prev_chapter else None,
        next_chapter_key=chapter_of(next_chapter) if next_chapter else None,
        params=_param_rows(record, spec), command=reproduce_command(record, spec),
        sources=_sources(record, spec, sources), pygments_css=_pygments_css(), interactive=interactive,
        counts=tally(record.get("checks", [])))


__all__ = ["build_gallery", "listed_figures", "render_index", "render_figure_page", "write_site", "read_records",
           "summarize", "energy_summary", "reproduce_command", "status_of", "render", "CHAPTERS"]
