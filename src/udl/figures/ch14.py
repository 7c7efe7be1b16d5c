"""Chapter 14: unsupervised learning; the taxonomy of udl's unsupervised models, measured (figure 14.1)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Ellipse

from udl import style
from udl.analysis.taxonomy import IS_MASS_TOL, MASS_TOL, probe_systems, region
from udl.registry import Check, Result, figure

# the four sets of the diagram: (centre x, centre y, width, height)
SETS = {"unsupervised": (6.0, 4.0, 11.6, 7.6), "generative": (6.3, 3.55, 8.8, 5.7),
        "probabilistic": (6.6, 3.1, 6.2, 3.7), "latent": (8.7, 4.1, 5.0, 7.3)}
INNER = ("unsupervised", "generative", "probabilistic")  # nested, outermost first
# where models go in each region (innermost set, latent?): spots inside exactly those sets
SLOTS = {("probabilistic", True): [(7.55, 4.35), (7.55, 3.65), (7.55, 2.95), (7.55, 2.25)],
         ("probabilistic", False): [(4.3, 3.45), (4.3, 2.75)],
         ("generative", True): [(8.9, 5.75), (9.3, 1.6)],
         ("generative", False): [(2.6, 4.6), (2.6, 3.9)],
         ("unsupervised", True): [(9.35, 7.05), (10.65, 2.4)],
         ("unsupervised", False): [(1.15, 4.4), (1.15, 3.5)]}
NOT_IN_UDL = [("normalizing flows", ("probabilistic", True), "chapter 16: not implemented in udl")]


def inside(point: tuple[float, float], name: str) -> bool:
    """Whether ``point`` lies inside the ellipse of set ``name``."""
    cx, cy, w, h = SETS[name]
    return ((point[0] - cx) / (w / 2)) ** 2 + ((point[1] - cy) / (h / 2)) ** 2 < 1


def membership(point: tuple[float, float]) -> tuple[str, bool]:
    """The innermost of the nested sets holding ``point`` ("outside" if none), and whether the latent set does."""
    inner = "outside"
    for name in INNER:
        if inside(point, name):
            inner = name
    return inner, inside(point, "latent")


@figure("14.1", title="Taxonomy of unsupervised models, each placed by what it measurably does",
        caption="Unsupervised models learn from data without labels. Generative models can draw new examples; "
                "probabilistic generative models also give the probability of an example; latent variable models "
                "relate the data to an underlying variable, and may belong to any of the other sets. Every "
                "unsupervised model in udl's registry is built and called: its sampler (are the samples finite and "
                "of the data's shape?), its probability evaluator summed over a whole small data space (a "
                "quadrature, or every image or sequence: an exact model totals one; a bound such as the ELBO totals "
                "less, while the importance-sampled estimate of the same model totals one) and its map from the "
                "latent variable. Each model is drawn where those measurements put it (right: the numbers). The "
                "GPT decoder is a probabilistic generative model without a latent variable; the GAN samples but "
                "defines no density (its generator maps a few latent dimensions onto a thin surface of the image "
                "space: the rank of its Jacobian); the autoencoder has a latent code but nothing to sample from. "
                "Normalizing flows (grey) are not implemented in udl.",
        params={"tiny": {}, "full": {}}, limits={})
def unsupervised_taxonomy(p, run):
    rows = probe_systems(generator=run.seed)
    placed, used = [], {key: 0 for key in SLOTS}
    for row in rows:
        key = region(row)
        slot = SLOTS[key][used[key]] if used[key] < len(SLOTS[key]) else None
        used[key] += 1
        placed.append({"name": row["name"], "region": list(key), "xy": list(slot) if slot else None,
                       "drawn_in": list(membership(slot)) if slot else None})
    extra = []
    for name, key, why in NOT_IN_UDL:
        slot = SLOTS[key][used[key]]
        used[key] += 1
        extra.append({"name": name, "region": list(key), "xy": list(slot), "why": why})
    metrics = {"rows": rows, "placed": placed, "not_in_udl": extra,
               "errors": {r["name"]: r["error"] for r in rows if r["error"]}}
    return Result(metrics=metrics, notes="Measured on small untrained instances (the registry's, sized so that the "
                                         "whole data space can be summed over): what a model can do does not "
                                         "depend on training. The diffusion model's bound and importance estimate "
                                         "run along five-step forward chains (udl.analysis.taxonomy). CPU only.")


def _describe(row) -> list[str]:
    """Three short lines of what was measured for one model."""
    samples = f"samples {tuple(row['sample_shape'])}" if row["samples"] else "no sampler"
    kind = row["probability"]
    if kind == "exact":
        prob = f"Pr(x) totals {row['mass']:.6f}"
    elif kind == "bound":
        prob = f"e^ELBO totals {row['bound_mass']:.3f}; IS {row['mass']:.3f}"
    elif row["jacobian_rank"] >= 0:
        prob = f"no Pr(x): Jacobian rank {row['jacobian_rank']} of {row['data_dims']} dims"
    else:
        prob = f"Pr(x): {kind}"
    latent = f"latent {tuple(row['latent_shape'])}" if row["latent"] else "no latent"
    return [samples, prob, latent]


@unsupervised_taxonomy.plot
def _(r):
    m = r.metrics
    with plt.rc_context(style.RC):
        fig, (ax, ax_t) = plt.subplots(1, 2, figsize=(12, 5.6), width_ratios=[1.45, 1], layout="constrained")
    ax.set(xlim=(0, 12), ylim=(0, 8), aspect="equal")
    ax.axis("off")
    fills = {"unsupervised": "#F2F2F2", "generative": "#E2E2E2", "probabilistic": "#CFCFCF"}
    for name in INNER:
        cx, cy, w, h = SETS[name]
        ax.add_patch(Ellipse((cx, cy), w, h, fc=fills[name], ec=style.TRUTH, lw=1, zorder=1))
    cx, cy, w, h = SETS["latent"]
    ax.add_patch(Ellipse((cx, cy), w, h, fc=style.MODEL, alpha=0.18, ec=style.MODEL, lw=1.5, zorder=2))
    ax.text(1.0, 6.55, "unsupervised\nmodels", fontsize=9, fontweight="bold", va="center")
    ax.text(2.3, 5.55, "generative", fontsize=9, fontweight="bold", va="center")
    ax.text(4.0, 4.3, "probabilistic", fontsize=9, fontweight="bold", va="center")
    ax.text(10.1, 5.3, "latent\nvariable", fontsize=9, fontweight="bold", va="center", color="#0B6F7C")
    for row, where in zip(m["rows"], m["placed"]):
        if where["xy"] is None:
            continue
        x, y = where["xy"]
        ax.plot(x, y, "o", color=style.DATA, ms=6, zorder=5)
        ax.text(x + 0.15, y, row["name"].split(" (")[0], fontsize=8, va="center", zorder=5)
    for item in m["not_in_udl"]:
        x, y = item["xy"]
        ax.plot(x, y, "o", mfc="white", mec="#888888", ms=6, zorder=5)
        ax.text(x + 0.15, y, f"{item['name']} (not in udl)", fontsize=8, va="center", color="#777777",
                style="italic", zorder=5)

    ax_t.axis("off")
    ax_t.set(xlim=(0, 1), ylim=(0, 1))
    ax_t.set_title("measured by calling each model", fontsize=9, loc="left")
    step = 1 / max(len(m["rows"]), 1)
    for i, row in enumerate(m["rows"]):
        top = 1 - i * step
        inner, latent = region(row)
        ax_t.text(0, top - 0.02, row["name"], fontsize=8.5, fontweight="bold", va="top")
        where = f"{inner}{' + latent' if latent else ''}"
        ax_t.text(1, top - 0.02, where, fontsize=7.5, va="top", ha="right", color="#0B6F7C")
        detail = row["error"] or " · ".join(_describe(row))
        ax_t.text(0.02, top - 0.02 - 0.045, detail, fontsize=7, va="top", color=style.TRUTH, wrap=True)
    style.panel_labels(np.array([ax, ax_t], dtype=object))
    return fig


@unsupervised_taxonomy.checks
def _(r):
    m = r.metrics
    rows = {row["name"]: row for row in m["rows"]}
    checks = [Check.equal("every unsupervised model in the registry builds and answers its probe", m["errors"], {})]
    misplaced = [p["name"] for p in m["placed"] if p["drawn_in"] != p["region"]]
    misplaced += [e["name"] for e in m["not_in_udl"] if list(membership(tuple(e["xy"]))) != e["region"]]
    checks.append(Check.equal("each model is drawn inside exactly the sets its measurements put it in",
                              misplaced, []))

    def find(word):
        return next((row for name, row in rows.items() if word in name.lower()), None)

    gpt, gan, ae = find("gpt"), find("gan"), find("autoencoder")
    mixture, vae, diffusion = find("mixture"), find("variational"), find("diffusion")

    def value(row, key):  # nan where the model or the measurement is missing: the check then fails
        return float("nan") if row is None or row[key] is None else row[key]

    checks += [
        Check.equal("GPT is a probabilistic generative model without a latent variable",
                    list(region(gpt)) if gpt else "missing", ["probabilistic", False]),
        Check.equal("the GAN is generative (it samples, through a latent) but not probabilistic",
                    list(region(gan)) if gan else "missing", ["generative", True]),
        Check.equal("the autoencoder has a latent code but is not generative",
                    list(region(ae)) if ae else "missing", ["unsupervised", True]),
        Check.close("the mixture of Gaussians' density integrates to one (quadrature)",
                    value(mixture, "mass"), 1.0, MASS_TOL),
        Check.close("GPT's probabilities of every 4-token continuation sum to one",
                    value(gpt, "mass"), 1.0, MASS_TOL),
    ]
    for name, row in (("VAE", vae), ("diffusion model", diffusion)):
        checks += [
            Check.less(f"the {name}'s ELBO is a bound: e^ELBO over the whole data space totals less than one",
                       value(row, "bound_mass"), 1 - 1e-3),
            Check.close(f"the {name}'s importance-sampled Pr(x) totals one: it is a normalised model",
                        value(row, "mass"), 1.0, IS_MASS_TOL),
            Check.greater(f"the {name}'s ELBO lies below its importance-sampled log-likelihood (mean gap, nats)",
                          value(row, "bound_gap"), 0.0),
        ]
    for name, row in (("GAN's generator", gan), ("autoencoder's decoder", ae)):
        ok = row is not None and 0 <= row["jacobian_rank"] <= row["latent_shape"][0] < row["data_dims"]
        checks.append(Check.holds(f"the {name} maps its latent onto a surface of lower dimension than the data "
                                  "(Jacobian rank <= latent size < data size): no density",
                                  ok, f"rank {row['jacobian_rank']}, latent {row['latent_shape']}, data "
                                      f"{row['data_dims']}" if row else "missing"))
    return checks
