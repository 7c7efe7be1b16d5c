"""Chapter 12, §12.10.4: the shifted-window (Swin) transformer on real digits (figure 12.18)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from udl import style
from udl.analysis.receptive_field import gradient_support
from udl.data.images import DIGITS_SHAPE, load_digits
from udl.models.swin import Swin, SwinConfig, window_ids
from udl.registry import Check, Limit, Result, figure
from udl.train.classifiers import classification_error
from udl.train.recipes import fit_adamw

_N_TRAIN = 1438  # load_digits("train") with its default 20 % held out


class _ChannelsFirst(nn.Module):
    """A map-to-map function on ``(B, H, W, C)`` tokens seen as ``(B, C, H, W)``, as gradient_support expects."""

    def __init__(self, *steps: nn.Module):
        super().__init__()
        self.steps = nn.Sequential(*steps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.steps(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class _Features(nn.Module):
    """Images to the last stage's tokens, channels first."""

    def __init__(self, model: Swin):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.features(images).permute(0, 3, 1, 2)


def _images(x: np.ndarray, upsample: int) -> torch.Tensor:
    x = torch.from_numpy(x)[:, None]  # (N, 1, 8, 8)
    return F.interpolate(x, scale_factor=upsample, mode="bilinear") if upsample > 1 else x


def _support(module: nn.Module, channels: int, side: int, unit: tuple[int, int], n_probes: int,
             seed: int) -> np.ndarray:
    """Which input tokens of a ``side`` x ``side`` map the output token ``unit`` depends on: ``(side, side)`` bool."""
    return gradient_support(_ChannelsFirst(module) if not isinstance(module, _ChannelsFirst) else module,
                            (channels, side, side), (0, *unit), n_probes=n_probes, generator=seed).numpy()


def _same(ids: torch.Tensor) -> np.ndarray:
    """``(N, N)``: whether patches i and j (row-major) share a window id."""
    flat = ids.flatten()
    return (flat[:, None] == flat[None, :]).numpy()


@figure("12.18", title="Shifted-window (Swin) transformer",
        caption="A Swin transformer trained on scikit-learn's 8x8 handwritten digits, a token per pixel. a) A "
                "held-out digit and the prediction. The later panels show, for one output token (orange), which "
                "input tokens it depends on (cyan: where the gradient of that output is non-zero), measured on the "
                "trained network. b) After one layer the map is cut into windows (black lines) and attention runs "
                "inside each, so the token sees exactly its window. c) The next layer shifts the windows by half a "
                "window (dashed): its windows straddle the previous ones, and after the two layers the token sees "
                "across the old window borders. d) Patch merging concatenates each 2x2 block of tokens and maps "
                "them to twice the channels: the map's side halves and each window now covers four times the "
                "area. e) Alternate layers shift the windows again at the lower resolution. f) In the last stage a "
                "single window covers the whole map and every output depends on every pixel.",
        params={"tiny": dict(upsample=1, window=2, d_model=8, depths=[2, 2, 2], n_heads=[1, 2, 2], steps=100,
                             batch_size=32, lr=0.01, weight_decay=0.05, accuracy_target=0.5, n_probes=2),
                "full": dict(upsample=1, window=2, d_model=16, depths=[2, 2, 2], n_heads=[1, 2, 4], steps=400,
                             batch_size=64, lr=3e-3, weight_decay=0.05, accuracy_target=0.95, n_probes=2)},
        limits={"upsample": Limit(choices=(1, 2, 4)), "window": (1, 16), "d_model": (1, 256),
                "depths": Limit(1, 8, max_len=6), "n_heads": Limit(1, 64, max_len=6), "steps": (1, 100_000),
                "batch_size": (1, _N_TRAIN), "lr": (1e-6, 1.0), "weight_decay": (0.0, 1.0),
                "accuracy_target": (0.0, 1.0), "n_probes": (1, 64)})
def swin_digits(p, run):
    x_train, y_train = load_digits("train", seed=run.seed, flat=False)
    x_test, y_test = load_digits("test", seed=run.seed, flat=False)
    x_train, x_test = _images(x_train, p.upsample), _images(x_test, p.upsample)
    y_train, y_test = torch.from_numpy(y_train), torch.from_numpy(y_test)
    side = DIGITS_SHAPE[0] * p.upsample
    config = _config(p)
    model = Swin(config, generator=run.seed)
    losses = fit_adamw(model, (x_train, y_train), F.cross_entropy, steps=p.steps, lr=p.lr,
                       weight_decay=p.weight_decay, floor=0.01, batch_size=p.batch_size, clip_grad_norm=1.0,
                       seed=run.seed, device=run.device, progress=False)
    model = model.cpu().eval()
    accuracy = 1.0 - classification_error(model, x_test, y_test)

    # the shapes around every merge, from a forward pass with hooks
    merges = [stage.merge for stage in model.stages if stage.merge is not None]
    shapes = []
    hooks = [m.register_forward_hook(lambda mod, args, out: shapes.append((list(args[0].shape[1:]),
                                                                            list(out.shape[1:]))))
             for m in merges]
    with torch.no_grad():
        logits = model(x_test)
    for h in hooks:
        h.remove()
    probs = torch.softmax(logits, 1)
    pred = probs.argmax(1)
    shown = 0  # the first held-out digit, right or wrong

    # every layer alone: each output token's support against the window ids written without the roll
    resolutions, widths, m = config.resolutions(), config.widths(), config.window
    layer_mismatches, shifted_same_as_plain, shifted_layers, low_res_shifted = 0, 0, 0, 0
    for s, stage in enumerate(model.stages):
        r, n = resolutions[s], resolutions[s] ** 2
        for layer in stage.layers:
            expected = _same(window_ids(r, r, m, layer.shift))
            plain = _same(window_ids(r, r, m, 0))
            for i in range(n):
                got = _support(layer, widths[s], r, divmod(i, r), p.n_probes, run.seed).flatten()
                layer_mismatches += int(not np.array_equal(got, expected[i]))
                if layer.shift:
                    shifted_same_as_plain += int(np.array_equal(got, plain[i]))
            if layer.shift:
                shifted_layers += 1
                low_res_shifted += int(s > 0)
    # every merge alone: merged token (i, j) sees exactly the 2 x 2 block (2i..2i+1, 2j..2j+1)
    merge_mismatches = 0
    for s, merge in enumerate(merges):
        r = resolutions[s]
        for i in range(r // 2):
            for j in range(r // 2):
                block = np.zeros((r, r), dtype=bool)
                block[2 * i:2 * i + 2, 2 * j:2 * j + 2] = True
                merge_mismatches += int(not np.array_equal(_support(merge, widths[s], r, (i, j), p.n_probes,
                                                                    run.seed), block))
    # an unshifted then a shifted layer (the first stage's first two): measured against the closed form
    g = resolutions[0]
    first = list(model.stages[0].layers)
    pair_checked = len(first) >= 2 and first[1].shift > 0
    pair_mismatches, crossing = 0, 0
    if pair_checked:
        plain, shifted = _same(window_ids(g, g, m, 0)), _same(window_ids(g, g, m, first[1].shift))
        predicted = (shifted.astype(int) @ plain.astype(int)) > 0  # p sees its shifted window's windows
        window_of = window_ids(g, g, m, 0).flatten().numpy()
        pair = _ChannelsFirst(first[0], first[1])
        for i in range(g * g):
            got = _support(pair, widths[0], g, divmod(i, g), p.n_probes, run.seed).flatten()
            pair_mismatches += int(not np.array_equal(got, predicted[i]))
            crossing += int(len(np.unique(window_of[got])) > 1)

    # one output token through the whole network: its support in input tokens after each step
    modules, labels = [], []
    for s, stage in enumerate(model.stages):
        for layer in stage.layers:
            modules.append(layer)
            labels.append((s, "shifted layer" if layer.shift else "layer", layer.shift))
        if stage.merge is not None:
            modules.append(stage.merge)
            labels.append((s, "merge", 0))
    unit = (g // 2 - 1, g // 2 - 1)  # the token just above and left of the centre
    reach, merged = [], 0
    for k in range(1, len(modules) + 1):
        merged += labels[k - 1][1] == "merge"
        out_unit = (unit[0] >> merged, unit[1] >> merged)
        reach.append(_support(_ChannelsFirst(*modules[:k]), widths[0], g, out_unit, p.n_probes, run.seed))
    pixels = gradient_support(_Features(model), (1, side, side), (0, 0, 0), n_probes=p.n_probes,
                              generator=run.seed).numpy()
    sizes = [int(r_.sum()) for r_ in reach]
    n_head = max(1, len(losses) // 10)
    return Result(
        metrics={"accuracy": accuracy, "n_train": len(y_train), "n_test": len(y_test),
                 "n_parameters": sum(q.numel() for q in model.parameters()),
                 "n_parameters_closed_form": config.parameter_count(),
                 "resolutions": resolutions, "widths": widths, "window": m,
                 "shifts": [config.shifts(s) for s in range(len(config.depths))],
                 "merge_shapes": shapes[:len(merges)],
                 "layer_support_mismatches": layer_mismatches, "layers_checked": sum(config.depths),
                 "tokens_checked": sum(n * r * r for n, r in zip(config.depths, resolutions)),
                 "shifted_layers": shifted_layers, "shifted_layers_after_a_merge": low_res_shifted,
                 "shifted_supports_equal_to_plain_windows": shifted_same_as_plain,
                 "merge_support_mismatches": merge_mismatches,
                 "pair_checked": pair_checked, "pair_support_mismatches": pair_mismatches,
                 "pair_tokens_crossing_window_borders": crossing, "tokens_first_stage": g * g,
                 "unit": list(unit), "steps": [list(l_) for l_ in labels], "support_sizes": sizes,
                 "final_pixels_seen": int(pixels.sum()), "pixels": side * side,
                 "shown": shown, "shown_label": int(y_test[shown]), "shown_prediction": int(pred[shown]),
                 "shown_probability": float(probs[shown, pred[shown]]),
                 "loss_first": float(np.mean(losses[:n_head])), "loss_last": float(np.mean(losses[-n_head:]))},
        arrays={"image": x_test[shown, 0].numpy(), "reach": np.stack(reach).astype(np.uint8),
                "losses": np.asarray(losses)},
        notes=f"scikit-learn's 8x8 digits{f' upsampled {p.upsample}x (bilinear)' if p.upsample > 1 else ''} with "
              f"one token per pixel, in place of 224x224 photographs with 4x4-pixel patches; {len(config.depths)} "
              f"stages of {list(config.depths)} blocks with {resolutions[0]}..{resolutions[-1]}-token maps, "
              f"{m}x{m} windows and {widths[0]}..{widths[-1]} channels ({sum(q.numel() for q in model.parameters()):,} "
              f"parameters) instead of Swin-T's 4 stages of 56..7 tokens, 7x7 windows and 96..768 channels; "
              f"{p.steps} AdamW steps, no augmentation and no stochastic depth. "
              + ("Windows of 2x2 tokens let the 8x8 map shift at two resolutions before it is a single window (with "
                 "4x4 windows one merge leaves a single window, and that model trains far more slowly on the digits, "
                 "transformers' Swin from the same weights too). " if m == 2 and side == 8 else "")
              + "The shift mask is -inf (Swin's reference code uses -100), so supports are exact.")


def _config(p) -> SwinConfig:
    """The model's shape; SwinConfig checks it (one head count per stage, heads that divide each stage's channels)."""
    return SwinConfig.digits(image_size=DIGITS_SHAPE[0] * p.upsample, d_model=p.d_model, depths=tuple(p.depths),
                             n_heads=tuple(p.n_heads), window=p.window)


@swin_digits.requires
def _(p):
    side = DIGITS_SHAPE[0] * p.upsample
    last = side // 2 ** (len(p.depths) - 1)
    if side % 2 ** (len(p.depths) - 1) or last != p.window or len(p.depths) < 2:
        raise ValueError(f"The 'window' parameter of figure 12.18 must be the side of the last stage's map, so that "
                         f"a single window remains after the merges (a {side}x{side} map halved "
                         f"{len(p.depths) - 1} times), with at least one merge. Got {p.window} instead.")
    _config(p)  # SwinConfig's own checks, before any training


def _draw_support(ax, image, support, unit, tokens: int, window: int, shift: int, title: str) -> None:
    """One panel: the digit, the tokens an output sees (cyan), the output (orange), the windows (black)."""
    g = support.shape[0]
    ax.imshow(image, cmap="gray_r", vmin=0, vmax=2, extent=(0, g, g, 0), interpolation="nearest")
    overlay = np.zeros((g, g, 4))
    overlay[support.astype(bool)] = (*plt.matplotlib.colors.to_rgb(style.MODEL), 0.65)
    ax.imshow(overlay, extent=(0, g, g, 0), interpolation="nearest")
    r0, c0 = (unit[0] // tokens) * tokens, (unit[1] // tokens) * tokens
    ax.add_patch(plt.Rectangle((c0, r0), tokens, tokens, fc=style.DATA, ec="black", lw=0.8))
    for k in range(0, g + 1, tokens):  # the stage's tokens
        ax.axhline(k, color=style.REGION, lw=0.5)
        ax.axvline(k, color=style.REGION, lw=0.5)
    span, offset = window * tokens, shift * tokens
    for k in range(offset, g + 1, span):  # the windows; shifted ones dashed
        ls = "--" if shift else "-"
        ax.axhline(k, color=style.TRUTH, lw=1.6, ls=ls)
        ax.axvline(k, color=style.TRUTH, lw=1.6, ls=ls)
    ax.set(xlim=(0, g), ylim=(g, 0), xticks=[], yticks=[])
    ax.set_title(title, fontsize=8)


@swin_digits.plot
def _(r):
    a, m = r.arrays, r.metrics
    steps, reach, unit = m["steps"], a["reach"], m["unit"]
    res, widths, window = m["resolutions"], m["widths"], m["window"]
    g = res[0]

    def first(pred):
        return next((k for k, st in enumerate(steps) if pred(st)), None)

    panels = [("after one layer: its window", first(lambda st: st[1] == "layer")),
              ("after a shifted layer", first(lambda st: st[1] == "shifted layer" and st[0] == 0)),
              ("after patch merging", first(lambda st: st[1] == "merge")),
              ("shifted, at lower resolution", first(lambda st: st[1] == "shifted layer" and st[0] > 0)),
              ("last stage: a single window", len(steps) - 1)]
    with plt.rc_context(style.RC):
        fig, axes = plt.subplots(2, 3, figsize=(9.0, 6.4), layout="constrained")
    axes = axes.flatten()
    axes[0].imshow(a["image"], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    axes[0].set(xticks=[], yticks=[])
    axes[0].set_title(f"held-out {m['shown_label']}: predicted {m['shown_prediction']} ({m['shown_probability']:.2f})\n"
                      f"test accuracy {m['accuracy']:.3f}", fontsize=8)
    for ax, (title, k) in zip(axes[1:], panels):
        if k is None:
            ax.axis("off")
            ax.text(0.5, 0.5, f"{title}:\nnone at these parameters", ha="center", va="center", fontsize=8,
                    transform=ax.transAxes)
            continue
        s, kind, shift = steps[k]
        stage = s + 1 if kind == "merge" else s
        tokens = g // res[stage]
        seen = int(reach[k].sum())
        _draw_support(ax, a["image"], reach[k], unit, tokens, window, 0 if kind == "merge" else shift,
                      f"{title}\n{res[stage]}x{res[stage]} tokens, {widths[stage]} channels; sees {seen}/{g * g}")
    style.panel_labels(axes)
    return fig


@swin_digits.checks
def _(r):
    m, p = r.metrics, r.params
    checks = [
        Check.holds(f"held-out accuracy on the {m['n_test']} test digits is at least {p['accuracy_target']}",
                    m["accuracy"] >= p["accuracy_target"], m["accuracy"], f">= {p['accuracy_target']}"),
        Check.equal(f"attention stays inside windows: in every layer ({m['layers_checked']} layers, "
                    f"{m['tokens_checked']} output tokens) an output's gradient support is exactly its window "
                    f"(shifted windows in shifted layers); tokens whose support differs",
                    m["layer_support_mismatches"], 0),
        Check.equal("merging halves the resolution and doubles the channels: (side, channels) before -> after "
                    "each merge, measured by hooks",
                    [[[b[0], b[2]], [a_[0], a_[2]]] for b, a_ in m["merge_shapes"]],
                    [[[rr, w], [rr // 2, 2 * w]] for rr, w in zip(m["resolutions"][:-1], m["widths"][:-1])]),
        Check.equal("a merged token depends on exactly its 2x2 block of tokens (tokens whose support differs)",
                    m["merge_support_mismatches"], 0),
        Check.equal(f"a single window remains: the last stage is {m['window']}x{m['window']} tokens and one of "
                    f"its outputs depends on every one of the {m['pixels']} pixels",
                    [m["resolutions"][-1], m["final_pixels_seen"]], [m["window"], m["pixels"]]),
        Check.holds("what one output sees never shrinks from layer to layer and ends at the whole map",
                    all(b >= a_ for a_, b in zip(m["support_sizes"], m["support_sizes"][1:]))
                    and m["support_sizes"][-1] == m["tokens_first_stage"],
                    m["support_sizes"], f"non-decreasing, ending at {m['tokens_first_stage']}"),
    ]
    claim = "shifting changes window membership: in shifted layers no output sees the set of its unshifted window"
    if m["shifted_layers"]:
        checks.append(Check.equal(claim + " (tokens that do)", m["shifted_supports_equal_to_plain_windows"], 0))
    else:
        checks.append(Check.untested(claim, "no layer is shifted (window 1, or one layer per stage)"))
    claim = "after an unshifted and a shifted layer information crosses window borders"
    if m["pair_checked"]:
        checks.append(Check.equal(claim + ": every output sees the union of the windows of its shifted window "
                                  "(tokens whose support differs)", m["pair_support_mismatches"], 0))
        checks.append(Check.greater(claim + ": outputs whose support spans more than one window",
                                    m["pair_tokens_crossing_window_borders"], 0))
    else:
        checks.append(Check.untested(claim, "the first stage has no shifted second layer"))
    claim = "alternate layers use shifted windows at the lower resolutions too"
    later = [k for k in range(1, len(m["resolutions"])) if m["resolutions"][k] > m["window"]]
    if not later:
        checks.append(Check.untested(claim, "every stage after a merge is a single window"))
    elif all(len(m["shifts"][k]) < 2 for k in later):
        checks.append(Check.untested(claim, "the stages after a merge have one layer each"))
    else:
        checks.append(Check.greater(claim + " (shifted layers after a merge, each checked above)",
                                    m["shifted_layers_after_a_merge"], 0))
    return checks
