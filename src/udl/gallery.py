"""``udl gallery``: compute every figure and gather the pictures and checks in one HTML page.

The page (``index.html``) works offline from the file system: it links the PNGs
written beside it and holds everything else inline.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

from udl.cache import writable_folder
from udl.registry import load_all, sort_key, tally, to_jsonable
from udl.runner import one_line_warnings, run_and_write
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


def build_gallery(preset: str = "full", out: str | Path = "udl-out", *, jobs: int = 1, chapters=None,
                  seed: int = 0, device: str = "auto", cache: bool = True) -> dict:
    """Compute every figure (optionally only some chapters), write records and ``index.html``.

    A failing figure is recorded as failed and the others still run.

    Args:
        preset: ``"tiny"`` or ``"full"``.
        out: the output folder.
        jobs: figures computed in parallel, each in its own process (each process uses
            :func:`udl.devices.cpu_threads` torch threads: one unless ``$UDL_NUM_THREADS``
            says otherwise, so ``jobs`` = the number of cores keeps them all busy). At
            most one process per figure; more than the CPUs is allowed, with a warning.
        chapters: chapter numbers (or ``"C"``) to include; all when None.
        seed, device, cache: as for :func:`udl.runner.run_figure`.

    Returns:
        A summary: figures, passed and failed checks, failed figures, seconds, ok.

    Raises:
        ValueError: ``out`` is not a folder where files can be written (before any work).
    """
    jobs = check_int(jobs, "jobs", "build_gallery")
    out = writable_folder(out, "out", "build_gallery")
    ids = [i for i, s in load_all().items() if chapters is None or s.chapter in chapters]
    processes = min(jobs, max(len(ids), 1))  # one per figure at most
    cpus = os.cpu_count() or 1
    if processes > cpus:
        warnings.warn(f"jobs={jobs} runs {processes} processes on {cpus} CPUs: they share the CPUs, so the "
                      f"gallery is no faster than with jobs={cpus}, and each process holds its own memory",
                      stacklevel=1)
    start = time.perf_counter()
    records = []
    from tqdm.auto import tqdm

    with tqdm(total=len(ids), desc=f"udl gallery ({preset})", unit="fig", disable=None) as bar:
        if processes == 1:
            for fig_id in ids:
                bar.set_postfix_str(fig_id)
                records.append(run_and_write(fig_id, preset, seed, device, None, cache, out))
                bar.update()
        else:
            with ProcessPoolExecutor(processes, mp_context=get_context("spawn"), initializer=one_line_warnings) as pool:
                futures = [pool.submit(run_and_write, i, preset, seed, device, None, cache, out)
                           for i in ids]
                for future in as_completed(futures):
                    records.append(future.result())
                    bar.update()
    seconds = time.perf_counter() - start
    records.sort(key=lambda r: sort_key(r["id"]))
    summary = {
        "figures": len(records),
        **{k: sum(tally(r["checks"])[k] for r in records) for k in ("passed", "failed", "not_tested")},
        "failed_figures": [r["id"] for r in records if not r["ok"]],
        "seconds": seconds,
        "compute_seconds": sum(r["seconds"] for r in records),
        "preset": preset,
        "energy": energy_summary(records),
    }
    summary["ok"] = not summary["failed_figures"]
    (out / "index.html").write_text(render(records, summary), encoding="utf-8")
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
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


def _short(value) -> str:
    """A metric as a short string for the card."""
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
    return str(value)


def render(records: list[dict], summary: dict) -> str:
    """The gallery page for ``records`` (as written by ``udl figure``)."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("udl", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["short"] = _short
    groups: dict = {}
    for rec in records:
        groups.setdefault(rec["chapter"], []).append(rec)
    chapters = [{"key": key, "name": CHAPTERS.get(key, ""), "records": recs} for key, recs in groups.items()]
    return env.get_template("gallery.html").render(chapters=chapters, summary=summary,
                                                   when=time.strftime("%Y-%m-%d %H:%M"))
