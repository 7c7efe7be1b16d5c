"""Chapter 21 notes: the energy and CO2 of udl's own computations beside the book's numbers (figure 21.carbon)."""

from __future__ import annotations

import io
import json

import numpy as np
import torch

from udl import carbon, style
from udl.cache import cache_dir
from udl.data.images import load_digits
from udl.registry import Check, Limit, Result, figure
from udl.train.loop import fit

TRANSFORMER_KG = 284_000.0  # the book (Strubell et al.): training a 213M-parameter transformer, about 284 t CO2
PERSON_KG = 5_000.0  # the book: an average person, about 5 t CO2 per year
MAX_CACHE_ENTRIES = 5000  # at most this many cached figure results are read for their energy
ARITHMETIC_TOL = 1e-6  # relative: CO2 = kWh x intensity, as codecarbon computes it in floating point


def _cached_runs() -> list[dict]:
    """The energy entries of the figure results in udl's cache that were measured (one per cached run)."""
    entries = []
    for path in sorted(cache_dir().glob("*.npz"))[:MAX_CACHE_ENTRIES]:
        try:
            with np.load(io.BytesIO(path.read_bytes()), allow_pickle=False) as data:
                energy = json.loads(str(data["__meta__"])).get("energy") or {}
        except Exception:  # noqa: BLE001 - an unreadable entry is the cache's business, not this figure's
            continue
        if energy.get("measured"):
            entries.append({"id": path.name.rsplit("-", 1)[0], **energy})
    return entries


def _digits():
    return [tuple(torch.from_numpy(a) for a in load_digits(s, seed=0)) for s in ("train", "test")]


def _train(data, steps: int, width: int, batch: int, seed: int, device) -> float:
    """Train a one-hidden-layer network on the 8x8 digits for ``steps`` Adam steps; its test accuracy."""
    (x, y), (xt, yt) = data
    model = torch.nn.Sequential(torch.nn.Linear(64, width), torch.nn.ReLU(), torch.nn.Linear(width, 10))
    fit(model, (x, y), torch.nn.functional.cross_entropy, lambda ps: torch.optim.Adam(ps, lr=1e-3),
        steps=steps, batch_size=batch, seed=seed, device=device, progress=False)
    model.cpu().eval()
    with torch.no_grad():
        return float((model(xt).argmax(1) == yt).float().mean())


# =========================================================================== 21.carbon
@figure("21.carbon", title="The carbon cost of udl's own computations, beside the book's numbers",
        caption="a) Energy measured by codecarbon's offline tracker while a small network (one hidden layer) "
                "learns the 8x8 digits for more and more Adam steps (orange dots), and the most the stated "
                "method could charge for the same seconds (gray dashes: the CPU's rated power plus the memory's "
                "constant power for the whole time). b) Carbon dioxide on a logarithmic scale: the longest of "
                "these training runs, every figure result in udl's cache whose energy was measured (their sum), "
                "one person's yearly emissions and the training of a 213-million-parameter transformer as the "
                "book quotes them. The CO2 of udl's runs is their energy times a stated grid intensity (the "
                "world average, not the local grid), and the power itself is an estimate where the processor "
                "has no energy counters (the record's energy method says which).",
        params={"tiny": dict(steps=[20, 200], width=32, batch=64),
                "full": dict(steps=[100, 300, 1000, 3000], width=128, batch=64)},
        limits={"steps": Limit(1, 100_000, max_len=8), "width": (1, 4096), "batch": (1, 1437)})
def carbon_cost(p, run):
    steps = sorted(set(p.steps))
    data = _digits()
    _train(data, 2, p.width, p.batch, run.seed, run.device)  # warm-up (first calls, allocations): not measured
    runs = []
    for k, n in enumerate(steps):  # each run measured on its own (inside the runner's measurement of the figure)
        with carbon.measuring() as energy:
            acc = _train(data, n, p.width, p.batch, run.seed + k, run.device)
        runs.append({"steps": n, "accuracy": acc, **energy})
    measured = all(r["measured"] for r in runs)
    cached = _cached_runs()
    # metrics hold what a seed reproduces; the measurements (they vary from run to run) are arrays
    metrics = {"steps": steps, "accuracy": [r["accuracy"] for r in runs], "measured": measured,
               "transformer_kg": TRANSFORMER_KG, "person_kg": PERSON_KG}
    arrays = {"cached": np.array([len(cached), sum(c["kwh"] for c in cached), sum(c["co2_kg"] for c in cached)])}
    if measured:
        arrays.update({key: np.array([r[key] for r in runs], float)
                       for key in ("kwh", "co2_kg", "seconds", "cpu_kwh", "ram_kwh", "gpu_kwh", "cpu_power_w")})
        first = runs[0]
        arrays["consistent"] = np.array([carbon.consistent(r) for r in runs])
        arrays["power"] = np.array([first["grid_g_per_kwh"], first["cpu_tdp_w"] or 0.0, first["ram_power_w"]])
        ratio = TRANSFORMER_KG / max(runs[-1]["co2_kg"], 1e-30)
        notes = (f"Measured with {first['method']}; CO2 at {first['grid_g_per_kwh']:g} g CO2e per kWh. "
                 f"The book's transformer emitted about {ratio:.2g} times the longest run here; "
                 f"{len(cached)} cached figure results had measured energy.")
    else:
        notes = f"Energy not measured ({runs[0].get('why', '')}): only the book's numbers are drawn."
    return Result(metrics=metrics, arrays=arrays, notes=notes)


@carbon_cost.plot
def _(r):
    m, a = r.metrics, r.arrays
    fig, (ax, bx) = style.subplots(1, 2, width=3.6, height=2.8)
    if m["measured"]:
        steps, seconds = np.array(m["steps"], float), a["seconds"]
        bound = a["power"][1] + a["power"][2]
        ax.plot(steps, a["kwh"] * 1000, "o-", color=style.DATA, label="measured")
        ax.plot(steps, bound * seconds / 3600, "--", color=style.REGION, label="rated power x time")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.legend(frameon=False, fontsize=7)
    else:
        ax.text(0.5, 0.5, "energy not measured", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("training steps")
    ax.set_ylabel("energy (Wh)")
    rows = [("a 213M-parameter\ntransformer (book)", m["transformer_kg"], style.TRUTH),
            ("a person, one year\n(book)", m["person_kg"], style.TRUTH)]
    if a["cached"][0]:
        rows.append((f"udl's cached runs\n({int(a['cached'][0])} figure results)", a["cached"][2], style.MODEL))
    if m["measured"]:
        rows.append((f"this figure's longest\nrun ({m['steps'][-1]} steps)", a["co2_kg"][-1], style.DATA))
    labels, values, colors = zip(*rows)
    y = np.arange(len(rows))
    bx.barh(y, values, color=colors, height=0.6)
    for yi, v in zip(y, values):
        bx.text(v, yi, f" {_mass(v)}", va="center", fontsize=7)
    bx.set_xscale("log")
    bx.set_xlim(min(values) / 10, max(values) * 100)
    bx.set_yticks(y, labels, fontsize=7)
    bx.set_xlabel("CO2 (kg, log scale)")
    style.panel_labels(np.array([ax, bx]))
    return fig


def _mass(kg: float) -> str:
    """A mass of CO2 in the unit that reads best."""
    for unit, scale in (("t", 1000.0), ("kg", 1.0), ("g", 1e-3), ("mg", 1e-6), ("µg", 1e-9)):
        if kg >= scale:
            return f"{kg / scale:.3g} {unit}"
    return f"{kg / 1e-9:.2g} µg"


@carbon_cost.checks
def _(r):
    m, a = r.metrics, r.arrays
    checks = [Check.close("the book's transformer emitted about 57 person-years of CO2",
                          m["transformer_kg"] / m["person_kg"], 284 / 5, 1e-12, rel=True)]
    if not m["measured"]:
        why = f"the energy was not measured: {r.notes}"
        return checks + [Check.untested("every run's CO2 is its energy times the grid intensity", why),
                         Check.untested("the measured energy is positive and within the method's bounds", why)]
    expected = a["kwh"] * a["power"][0] / 1000
    error = float(np.max(np.abs(a["co2_kg"] - expected) / np.maximum(expected, 1e-30)))
    checks += [
        Check.less("every run's CO2 is its energy times the grid intensity (largest relative difference)",
                   error, ARITHMETIC_TOL),
        Check.greater("every run's measured energy is positive (smallest, kWh)", a["kwh"].min(), 0.0),
        Check.equal("every run's energy is within the method's bounds (CPU at most its rated power x time, "
                    "memory its constant power x time, parts summing to the total)", a["consistent"].tolist(),
                    [True] * len(a["kwh"])),
        Check.untested("the CO2 is what this machine's local grid emitted",
                       "offline: the intensity is a stated world average, not the local grid's"),
    ]
    if len(m["steps"]) >= 2 and m["steps"][-1] >= 5 * m["steps"][0]:
        checks.append(Check.greater("the longest run took more energy than the shortest (ratio)",
                                    a["kwh"][-1] / max(a["kwh"][0], 1e-30), 1.0))
    else:
        checks.append(Check.untested("the longest run took more energy than the shortest",
                                     "needs two runs at least 5x apart in steps"))
    return checks
