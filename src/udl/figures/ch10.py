"""Chapter 10: convolutional networks — convolution, channels, receptive fields, down- and upsampling."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle
from torch import nn

from udl import drawing, style
from udl.analysis.compare import max_difference
from udl.analysis.receptive_field import (gradient_support, input_sensitivity, layer_geometry, receptive_field_interval,
                                          receptive_field_sizes, support_interval)
from udl.data.images import load_photo
from udl.nn.conv import Conv1d, Conv2d, conv1d, conv2d, conv_output_length, dilate_kernel
from udl.nn.sampling import max_pool2d, max_unpool2d, mean_pool2d, subsample, upsample_bilinear, upsample_nearest
from udl.registry import Check, Limit, Result, figure


def _small_ints(rng, shape, low=-3, high=3) -> torch.Tensor:
    """Small whole numbers (float64): readable in the cells, and every sum is exact."""
    return torch.as_tensor(rng.integers(low, high + 1, size=shape), dtype=torch.float64)


def _kernel(rng, k) -> torch.Tensor:
    """Distinct small non-zero whole numbers: a zero would hide a connection, a symmetric kernel a flip."""
    w = rng.choice([-3, -2, -1, 1, 2, 3], size=k, replace=False)
    return torch.as_tensor(w, dtype=torch.float64)


def _random_conv1d_diffs(run, n_random: int, offset: int) -> float:
    """Largest |udl conv1d - F.conv1d| over random inputs and settings."""
    g = run.generator(offset)
    worst = 0.0
    for t in range(n_random):
        k, s, d = 1 + t % 5, 1 + t % 3, 1 + (t // 3) % 3
        c_in, c_out = 1 + t % 2, 1 + t % 3
        n = d * (k - 1) + 1 + 4 + t % 7
        x = torch.randn(2, c_in, n, generator=g, dtype=torch.float64)
        w = torch.randn(c_out, c_in, k, generator=g, dtype=torch.float64)
        b = torch.randn(c_out, generator=g, dtype=torch.float64)
        p = t % 3
        worst = max(worst, max_difference(conv1d(x, w, b, stride=s, padding=p, dilation=d),
                                          F.conv1d(x, w, b, stride=s, padding=p, dilation=d)))
    return worst


# --------------------------------------------------------------------------- drawing helpers (no computation)
def _fmt(v: float) -> str:
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.3g}"


def _link(ax, start, end, *, color="black", lw=0.9, label=None, at=0.35):
    (x0, y0), (x1, y1) = start, end
    ax.plot([x0, x1], [y0 + 0.42, y1 - 0.42], color=color, lw=lw, zorder=1)
    if label:
        ax.text(x0 + at * (x1 - x0), y0 + 0.42 + at * (y1 - y0 - 0.84), label, fontsize=7, ha="center",
                va="center", color=color, zorder=4, bbox=dict(fc="white", ec="none", pad=0.2))


def _conv_panel(ax, x, z, z_at, out_index, *, k, stride=1, dilation=1, padding=0, title="", tap_labels=None):
    """Inputs in a row (orange where the kernel reads them), outputs above (cyan: the one drawn).

    ``z_at[i]`` is the abscissa of output i (the input it is centred on); padded
    positions are dashed cells holding 0.
    """
    n = len(x)
    lo = stride * out_index - padding  # first input read by this output
    taps = [lo + dilation * j for j in range(k)]
    for i in range(-padding, n + padding):
        if 0 <= i < n:
            face = drawing.light(style.DATA, 0.8) if i in taps else "white"
            drawing.cell(ax, i, 0, _fmt(x[i]), face=face)
            ax.text(i, -0.75, f"$x_{{{i + 1}}}$", ha="center", va="center", fontsize=8)
        else:
            drawing.cell(ax, i, 0, "0", face=drawing.light(style.REGION, 0.5) if i in taps else "white", ls="--",
                         edge=style.REGION)
    for i, (zi, xi) in enumerate(zip(z, z_at)):
        face = drawing.light(style.MODEL, 0.8) if i == out_index else "white"
        drawing.cell(ax, xi, 2.0, _fmt(zi), face=face)
        ax.text(xi, 2.75, f"$z_{{{i + 1}}}$", ha="center", va="center", fontsize=8)
    for j, t in enumerate(taps):
        label = tap_labels[j] if tap_labels else f"$\\omega_{{{j + 1}}}$"
        _link(ax, (t, 0), (z_at[out_index], 2.0), color=style.TRUTH, label=label)
    drawing.frame(ax, (-padding - 0.7, n + padding - 0.3), (-1.1, 3.1))
    if title:
        ax.set_title(title, fontsize=9)


# --------------------------------------------------------------------------- 10.2
@figure("10.2", title="1D convolution with kernel size three",
        caption="Each output is a weighted sum of the three nearest inputs, with the same weights ω = [ω1, ω2, ω3] "
                "at every position: a) z2 = ω1x1 + ω2x2 + ω3x3, b) z3 = ω1x2 + ω2x3 + ω3x4. c) At the ends the "
                "kernel overhangs the input; zero-padding treats the missing inputs as zeros, so there are as "
                "many outputs as inputs. d) A 'valid' convolution keeps only the positions where the kernel fits, "
                "two fewer. Computed with udl's conv1d (the weighted sum written out) and compared with "
                "torch.nn.functional.conv1d.",
        params={"tiny": dict(n=6, n_random=6), "full": dict(n=6, n_random=60)},
        limits={"n": (4, 32), "n_random": (4, 10_000)})  # z3 reads x4; 4 settings reach strides and dilations 2
def conv_kernel_three(p, run):
    x = _small_ints(run.rng, p.n)
    omega = _kernel(run.rng, 3)
    xb, wb = x.view(1, 1, -1), omega.view(1, 1, 3)  # (N=1, C=1, L), (C_out=1, C_in=1, k=3)
    z_same = conv1d(xb, wb, padding=1)
    z_valid = conv1d(xb, wb, padding="valid")
    w1, w2, w3 = omega.tolist()
    hand = {"z2": w1 * x[0] + w2 * x[1] + w3 * x[2],  # UDL eq. 10.3 at i = 2 (1-based)
            "z3": w1 * x[1] + w2 * x[2] + w3 * x[3],
            "z1_padded": w1 * 0.0 + w2 * x[0] + w3 * x[1]}  # x0 is a padded zero
    return Result(
        metrics={"n": p.n, "omega": omega.tolist(),
                 "length_zero_padded": z_same.shape[-1], "length_valid": z_valid.shape[-1],
                 "max_abs_diff_padded": max_difference(z_same, F.conv1d(xb, wb, padding=1)),
                 "max_abs_diff_valid": max_difference(z_valid, F.conv1d(xb, wb)),
                 "max_abs_diff_random": _random_conv1d_diffs(run, p.n_random, 1),
                 "z2_minus_hand": abs(z_same[0, 0, 1].item() - hand["z2"].item()),
                 "z3_minus_hand": abs(z_same[0, 0, 2].item() - hand["z3"].item()),
                 "z1_minus_hand_padded": abs(z_same[0, 0, 0].item() - hand["z1_padded"].item())},
        arrays={"x": x.numpy(), "omega": omega.numpy(), "z_same": z_same[0, 0].numpy(),
                "z_valid": z_valid[0, 0].numpy()})


@conv_kernel_three.plot
def _(r):
    x, zs, zv = r.arrays["x"], r.arrays["z_same"], r.arrays["z_valid"]
    n = len(x)
    fig, axes = style.subplots(2, 2, width=3.4, height=1.9)
    same_at = list(range(n))
    _conv_panel(axes[0, 0], x, zs, same_at, 1, k=3, padding=1, title="$z_2$, zero-padded")
    _conv_panel(axes[0, 1], x, zs, same_at, 2, k=3, padding=1, title="$z_3$")
    _conv_panel(axes[1, 0], x, zs, same_at, 0, k=3, padding=1, title="$z_1$: the overhang reads a zero")
    _conv_panel(axes[1, 1], x, zv, list(range(1, n - 1)), 0, k=3, title=f"'valid': {len(zv)} outputs from {n}")
    w = ", ".join(_fmt(v) for v in r.arrays["omega"])
    fig.suptitle(f"ω = [{w}]", fontsize=9)
    style.panel_labels(axes)
    return fig


@conv_kernel_three.checks
def _(r):
    m = r.metrics
    return [Check.close("udl's conv1d equals F.conv1d with zero-padding", m["max_abs_diff_padded"], 0.0, 1e-12),
            Check.close("udl's conv1d equals F.conv1d for 'valid'", m["max_abs_diff_valid"], 0.0, 1e-12),
            Check.close("and on random inputs, strides, dilations and channels", m["max_abs_diff_random"], 0.0,
                        1e-12),
            Check.equal("zero-padding keeps n outputs", m["length_zero_padded"], m["n"]),
            Check.equal("'valid' gives n - 2 outputs", m["length_valid"], m["n"] - 2),
            Check.close("z2 = ω1x1 + ω2x2 + ω3x3", m["z2_minus_hand"], 0.0, 0.0),
            Check.close("z3 = ω1x2 + ω2x3 + ω3x4", m["z3_minus_hand"], 0.0, 0.0),
            Check.close("z1 = ω2x1 + ω3x2 (the padded input is zero)", m["z1_minus_hand_padded"], 0.0, 0.0)]


# --------------------------------------------------------------------------- 10.3
@figure("10.3", title="Stride, kernel size and dilation",
        caption="a-b) With stride two the kernel is evaluated at every other position: z1 is centred on x1, z2 on "
                "x3. c) A kernel of size five weights the nearest five inputs. d) Dilation two spreads a kernel of "
                "three weights over five inputs by inserting zeros between them. The output lengths follow "
                "⌊(n + 2p - d(k-1) - 1)/s⌋ + 1, and the dilated convolution equals an ordinary one whose kernel "
                "has the zeros written in.",
        params={"tiny": dict(n=7, n_random=6), "full": dict(n=7, n_random=60)},
        limits={"n": (4, 32), "n_random": (4, 10_000)})  # panel d draws z4
def stride_kernel_dilation(p, run):
    x = _small_ints(run.rng, p.n)
    xb = x.view(1, 1, -1)  # (1, 1, n)
    omega3, omega5 = _kernel(run.rng, 3), _kernel(run.rng, 5)
    cases = {"stride2": dict(w=omega3, stride=2, padding=1, dilation=1),
             "kernel5": dict(w=omega5, stride=1, padding=2, dilation=1),
             "dilation2": dict(w=omega3, stride=1, padding=2, dilation=2)}
    metrics, arrays = {"n": p.n}, {"x": x.numpy(), "omega3": omega3.numpy(), "omega5": omega5.numpy()}
    for name, c in cases.items():
        w = c["w"].view(1, 1, -1)
        z = conv1d(xb, w, stride=c["stride"], padding=c["padding"], dilation=c["dilation"])
        ref = F.conv1d(xb, w, stride=c["stride"], padding=c["padding"], dilation=c["dilation"])
        metrics[f"{name}_measured_length"] = z.shape[-1]
        metrics[f"{name}_torch_length"] = ref.shape[-1]
        metrics[f"{name}_formula_length"] = conv_output_length(p.n, len(c["w"]), c["stride"], c["padding"],
                                                               c["dilation"])
        metrics[f"{name}_max_abs_diff_torch"] = max_difference(z, ref)
        arrays[f"z_{name}"] = z[0, 0].numpy()
    holes = dilate_kernel(omega3.view(1, 1, 3), 2)  # [ω1, 0, ω2, 0, ω3]
    metrics["dilated_kernel"] = holes.flatten().tolist()
    metrics["dilated_vs_zero_inserted"] = max_difference(conv1d(xb, omega3.view(1, 1, 3), padding=2, dilation=2),
                                                         conv1d(xb, holes, padding=2))
    g = run.generator(7)  # the same identity on random real numbers
    xr, wr = torch.randn(4, 3, 30, generator=g, dtype=torch.float64), torch.randn(2, 3, 3, generator=g,
                                                                                  dtype=torch.float64)
    metrics["dilated_vs_zero_inserted_random"] = max_difference(conv1d(xr, wr, dilation=3),
                                                                conv1d(xr, dilate_kernel(wr, 3)))
    metrics["max_abs_diff_random"] = _random_conv1d_diffs(run, p.n_random, 2)
    return Result(metrics=metrics, arrays=arrays)


@stride_kernel_dilation.plot
def _(r):
    a, n = r.arrays, len(r.arrays["x"])
    x = a["x"]
    fig, axes = style.subplots(2, 2, width=3.6, height=1.9)
    stride_at = [2 * i for i in range(len(a["z_stride2"]))]
    _conv_panel(axes[0, 0], x, a["z_stride2"], stride_at, 0, k=3, stride=2, padding=1, title="stride 2: $z_1$")
    _conv_panel(axes[0, 1], x, a["z_stride2"], stride_at, 1, k=3, stride=2, padding=1, title="stride 2: $z_2$")
    _conv_panel(axes[1, 0], x, a["z_kernel5"], list(range(n)), 2, k=5, padding=2, title="kernel size 5")
    labels = ["$\\omega_1$", "$\\omega_2$", "$\\omega_3$"]
    _conv_panel(axes[1, 1], x, a["z_dilation2"], list(range(n)), 3, k=3, dilation=2, padding=2,
                title="dilation 2: kernel " + "[" + ", ".join(_fmt(v) for v in r.metrics["dilated_kernel"]) + "]",
                tap_labels=labels)
    w3, w5 = (", ".join(_fmt(v) for v in a[k]) for k in ("omega3", "omega5"))
    fig.suptitle(f"kernel 3: ω = [{w3}];  kernel 5: ω = [{w5}]", fontsize=9)
    style.panel_labels(axes)
    return fig


@stride_kernel_dilation.checks
def _(r):
    m = r.metrics
    checks = []
    for name, words in (("stride2", "stride 2, kernel 3, padding 1"), ("kernel5", "kernel 5, padding 2"),
                        ("dilation2", "dilation 2, kernel 3, padding 2")):
        checks.append(Check.equal(f"{words}: the length formula gives the measured length",
                                  m[f"{name}_measured_length"], m[f"{name}_formula_length"]))
        checks.append(Check.equal(f"{words}: the same length as F.conv1d", m[f"{name}_measured_length"],
                                  m[f"{name}_torch_length"]))
        checks.append(Check.close(f"{words}: values equal F.conv1d", m[f"{name}_max_abs_diff_torch"], 0.0, 1e-12))
    checks += [Check.equal("stride 2 halves the outputs (⌈n/2⌉)", m["stride2_measured_length"], (m["n"] + 1) // 2),
               Check.close("dilation equals the kernel with zeros inserted (whole numbers: exact)",
                           m["dilated_vs_zero_inserted"], 0.0, 0.0),
               Check.close("dilation equals the zero-inserted kernel on random inputs",
                           m["dilated_vs_zero_inserted_random"], 0.0, 1e-12),
               Check.close("udl's conv1d equals F.conv1d on random settings", m["max_abs_diff_random"], 0.0, 1e-12)]
    return checks


# --------------------------------------------------------------------------- 10.5
@figure("10.5", title="Channels",
        caption="Two convolutions of the same input, each with its own kernel, give two channels of hidden units "
                "(h1-h6 and h7-h12), stored as the rows of a 2 x 6 array H1. A second convolutional layer then "
                "weights both channels at the three nearest positions, so each of its outputs depends on both "
                "rows: the layers are udl Conv1d modules with weights of shape (C_out, C_in, k).",
        params={"tiny": dict(n=6, c_out=3), "full": dict(n=6, c_out=3)},
        limits={"n": (4, 32), "c_out": (1, 64)})  # n >= 4: an input outside the drawn unit's window
def channels(p, run):
    x = _small_ints(run.rng, p.n).view(1, 1, -1)  # (1, C=1, n)
    layer1 = Conv1d(1, 2, 3, padding=1, generator=run.generator(1)).double()
    layer2 = Conv1d(2, p.c_out, 3, padding=1, generator=run.generator(2)).double()
    with torch.no_grad():
        h1 = torch.relu(layer1(x))  # (1, 2, n): two channels
    h1 = h1.clone().requires_grad_(True)
    h2 = layer2(h1)  # (1, c_out, n)
    unit = p.n // 2  # the output drawn in panel c
    (grad,) = torch.autograd.grad(h2[0, 0, unit], h1)  # (1, 2, n): how h2 at `unit` depends on H1
    # perturb one channel of H1 (the three positions the kernel reads) and watch the output
    effect = []
    for c in range(2):
        bumped = h1.detach().clone()
        bumped[0, c, unit - 1:unit + 2] += 1.0
        effect.append(abs(layer2(bumped)[0, 0, unit].item() - h2[0, 0, unit].item()))
    ref = F.conv1d(h1, layer2.weight, layer2.bias, padding=1)
    return Result(
        metrics={"n": p.n, "c_out": p.c_out, "weight1_shape": list(layer1.weight.shape),
                 "weight2_shape": list(layer2.weight.shape), "h1_shape": list(h1.shape[1:]),
                 "h2_shape": list(h2.shape[1:]),
                 "parameters1": sum(q.numel() for q in layer1.parameters()),
                 "parameters2": sum(q.numel() for q in layer2.parameters()),
                 "grad_norm_channel1": grad[0, 0].abs().sum().item(),
                 "grad_norm_channel2": grad[0, 1].abs().sum().item(),
                 "grad_vs_kernel": max_difference(grad[0, :, unit - 1:unit + 2], layer2.weight[0]),
                 "grad_outside_window": grad[0].abs().sum().item() - grad[0, :, unit - 1:unit + 2].abs().sum().item(),
                 "bump_effect_channel1": effect[0], "bump_effect_channel2": effect[1],
                 "layer2_max_abs_diff_torch": max_difference(h2, ref)},
        arrays={"x": x[0, 0].numpy(), "h1": h1.detach()[0].numpy(), "h2": h2.detach()[0].numpy(),
                "w1": layer1.weight.detach()[:, 0].numpy(), "w2": layer2.weight.detach()[0].numpy()})


@channels.plot
def _(r):
    a = r.arrays
    x, h1, h2 = a["x"], a["h1"], a["h2"]
    n = len(x)
    unit = n // 2
    fig, axes = style.subplots(1, 3, width=3.0, height=2.6)
    for c, ax in enumerate(axes[:2]):  # a, b: each channel from its own kernel
        for i in range(n):
            drawing.cell(ax, i, 0, _fmt(x[i]), face=drawing.light(style.DATA, 0.8) if abs(i - unit) <= 1 else "white")
            drawing.cell(ax, i, 2.2, f"{h1[c, i]:.2f}", face=drawing.light(style.MODEL, 0.8) if i == unit else "white",
                         fontsize=6.5)
            ax.text(i, 2.95, f"$h_{{{i + 1 + c * n}}}$", ha="center", fontsize=7)
        for j in range(3):
            _link(ax, (unit - 1 + j, 0), (unit, 2.2), label=f"$\\omega_{{{j + 1 + 3 * c}}}$", at=0.3)
        ax.text(-0.9, 0, "x", ha="center", va="center", fontsize=9)
        ax.text(-0.9, 2.2, f"ch {c + 1}", ha="center", va="center", fontsize=8)
        drawing.frame(ax, (-1.5, n - 0.4), (-0.8, 3.4))
        weights = ", ".join(f"{v:.2f}" for v in a["w1"][c])
        ax.set_title(f"channel {c + 1} of $H_1$: ω = [{weights}]", fontsize=8)
    ax = axes[2]  # c: H1 (two rows) into one output channel
    for c in range(2):
        for i in range(n):
            drawing.cell(ax, i, c * 1.0, f"{h1[1 - c, i]:.2f}",
                         face=drawing.light(style.DATA, 0.8) if abs(i - unit) <= 1 else "white", fontsize=6.5)
        ax.text(-0.9, c * 1.0, f"ch {2 - c}", ha="center", va="center", fontsize=8)
    for i in range(n):
        drawing.cell(ax, i, 3.0, f"{h2[0, i]:.2f}", face=drawing.light(style.MODEL, 0.8) if i == unit else "white",
                     fontsize=6.5)
    for c in range(2):
        for j in range(3):
            _link(ax, (unit - 1 + j, c * 1.0), (unit, 3.0), color=style.TRUTH if c else style.REGION)
    ax.text(-0.9, 3.0, "$H_2$", ha="center", va="center", fontsize=9)
    drawing.frame(ax, (-1.5, n - 0.4), (-0.8, 3.7))
    ax.set_title(f"$H_2$ weighs both channels: ω {tuple(r.metrics['weight2_shape'])}", fontsize=9)
    style.panel_labels(axes)
    return fig


@channels.checks
def _(r):
    m = r.metrics
    return [Check.equal("first layer's weights have shape (C_out, C_in, k) = (2, 1, 3)", m["weight1_shape"], [2, 1, 3]),
            Check.equal("second layer's weights have shape (C_out, 2, 3)", m["weight2_shape"], [m["c_out"], 2, 3]),
            Check.equal("H1 holds two channels of n hidden units", m["h1_shape"], [2, m["n"]]),
            Check.equal("parameters: (C_in·k + 1)·C_out in each layer", [m["parameters1"], m["parameters2"]],
                        [(1 * 3 + 1) * 2, (2 * 3 + 1) * m["c_out"]]),
            Check.greater("the output depends on channel 1 of H1 (Σ|∂h/∂H1|)", m["grad_norm_channel1"], 0.0),
            Check.greater("the output depends on channel 2 of H1 (Σ|∂h/∂H1|)", m["grad_norm_channel2"], 0.0),
            Check.greater("bumping channel 1 alone changes the output", m["bump_effect_channel1"], 0.0),
            Check.greater("bumping channel 2 alone changes the output", m["bump_effect_channel2"], 0.0),
            Check.close("the gradient over the 2 x 3 window is the kernel itself", m["grad_vs_kernel"], 0.0, 1e-12),
            Check.close("and zero outside the three nearest positions", m["grad_outside_window"], 0.0, 0.0),
            Check.close("the second layer equals F.conv1d", m["layer2_max_abs_diff_torch"], 0.0, 1e-12)]


# --------------------------------------------------------------------------- 10.6
_BOOK_STRIDES = (1, 1, 2, 1)  # fig. 10.6: the third layer has stride 2
_BOOK_PADDING = (1, 1, 0, 1)  # zero-padding keeps the length, except where the stride halves it
_BOOK_FIELDS = (3, 5, 7, 11)  # the receptive fields of H1..H4 that the formula gives for this geometry


@figure("10.6", title="Receptive fields for kernel width three",
        caption="A network of four convolutional layers, kernel size three, on an input of eleven positions "
                "(H1 with three channels, then four; the third layer has stride two). The receptive field of a "
                "hidden unit is measured as the set of inputs with a non-zero gradient (orange, shaded by the mean "
                "|gradient| over random inputs): three inputs in H1, five in H2, seven in H3, and in H4 the whole "
                "input. The measured fields equal the formula r_l = r_(l-1) + (k_l - 1)·Π strides below.",
        params={"tiny": dict(n=11, channels=[3, 4, 4, 4], n_probes=32),
                "full": dict(n=11, channels=[3, 4, 4, 4], n_probes=64)},
        # the four layers of the book's network; enough probes that no unit is dead on all of them
        limits={"n": (3, 64), "channels": Limit(1, 64, min_len=4, max_len=4), "n_probes": (24, 256)})
def receptive_fields(p, run):
    g = run.generator(1)
    modules, c_in = [], 1
    for c_out, s, pad in zip(p.channels, _BOOK_STRIDES, _BOOK_PADDING):
        modules += [Conv1d(c_in, c_out, 3, stride=s, padding=pad, generator=g), nn.ReLU()]
        c_in = c_out
    net = nn.Sequential(*modules[:-1]).double()  # H4 is shown before its activation
    geometry = layer_geometry(net)
    metrics = {"n": p.n, "analytic_sizes": receptive_field_sizes(geometry), "measured_sizes": [],
               "measured_counts": [], "units": [], "measured_intervals": [], "analytic_intervals": [],
               "channels_agree": [], "mismatches_every_unit": 0, "layer_lengths": []}
    arrays = {}
    for depth in range(1, len(p.channels) + 1):
        sub = net[:2 * depth - 1]  # layers H1..H_depth
        length = sub(torch.zeros(1, 1, p.n, dtype=torch.float64)).shape[-1]
        metrics["layer_lengths"].append(length)
        intervals = [receptive_field_interval(geometry[:depth], i) for i in range(length)]
        unit = int(np.argmin([abs((lo + hi) / 2 - (p.n - 1) / 2) for lo, hi in intervals]))  # the central unit
        masks = [gradient_support(sub, (1, p.n), (c, unit), n_probes=p.n_probes, generator=run.seed)
                 for c in range(p.channels[depth - 1])]
        union = torch.stack(masks).any(0)
        (lo, hi), = support_interval(union)
        a_lo, a_hi = intervals[unit]
        metrics["units"].append(unit)
        metrics["measured_sizes"].append(hi - lo + 1)
        metrics["measured_counts"].append(int(union.sum()))
        metrics["measured_intervals"].append([lo, hi])
        metrics["analytic_intervals"].append([max(a_lo, 0), min(a_hi, p.n - 1)])
        metrics["channels_agree"].append(all(torch.equal(m, union) for m in masks))
        for i, (a_lo, a_hi) in enumerate(intervals):  # every unit of the layer: measured = clipped formula
            expected = torch.zeros(p.n, dtype=torch.bool)
            expected[max(a_lo, 0):a_hi + 1] = True
            got = gradient_support(sub, (1, p.n), (0, i), n_probes=p.n_probes, generator=run.seed)
            metrics["mismatches_every_unit"] += int((got != expected).sum())
        arrays[f"sensitivity{depth}"] = sum(input_sensitivity(sub, (1, p.n), (c, unit), n_probes=p.n_probes,
                                                              generator=run.seed)
                                            for c in range(p.channels[depth - 1])
                                            ).numpy()
        # where each layer's units sit over the input (the centre of their field), for the drawing
        arrays[f"centres{depth}"] = np.array([(lo + hi) / 2 for lo, hi in intervals])
        for below in range(1, depth):  # the units of a lower layer that feed the highlighted unit
            b_lo, b_hi = receptive_field_interval(geometry[below:depth], unit)
            last = metrics["layer_lengths"][below - 1] - 1
            arrays[f"feed{depth}_{below}"] = np.array([max(b_lo, 0), min(b_hi, last)])
    return Result(metrics=metrics, arrays=arrays,
                  notes="Weights are random (an untrained network): a receptive field depends only on the layers' "
                        "geometry, not on the weights' values.")


@receptive_fields.plot
def _(r):
    m, a = r.metrics, r.arrays
    n, depth_max = m["n"], len(m["units"])
    fig, axes = style.subplots(1, depth_max, width=2.6, height=3.4)
    gap = 1.5
    for depth, ax in enumerate(axes, start=1):
        sens = a[f"sensitivity{depth}"]
        peak = sens.max() if sens.max() > 0 else 1.0
        for i in range(n):
            shade = 0.25 + 0.75 * sens[i] / peak if sens[i] > 0 else 0.0
            drawing.cell(ax, i, 0, face=drawing.light(style.DATA, shade))
        ax.text(-1.1, 0, "x", ha="center", va="center", fontsize=9)
        unit = m["units"][depth - 1]
        for layer in range(1, depth + 1):
            y = gap * layer
            centres = a[f"centres{layer}"]
            feed = a[f"feed{depth}_{layer}"] if layer < depth else None
            for i, c in enumerate(centres):
                if layer == depth:
                    face = drawing.light(style.MODEL, 0.9) if i == unit else "white"
                else:
                    face = drawing.light(style.REGION, 0.9) if feed[0] <= i <= feed[1] else "white"
                drawing.cell(ax, c, y, face=face, size=0.84 if len(centres) == n else 1.3)
            ax.text(-1.1, y, f"$H_{layer}$", ha="center", va="center", fontsize=9)
        lo, hi = m["measured_intervals"][depth - 1]
        ax.plot([lo - 0.45, hi + 0.45], [-0.75, -0.75], color=style.DATA, lw=2)
        ax.text((lo + hi) / 2, -1.15, f"{m['measured_sizes'][depth - 1]} inputs", ha="center", va="top", fontsize=8)
        drawing.frame(ax, (-1.7, n - 0.3), (-1.7, gap * depth_max + 0.7))
        ax.set_title(f"field of $H_{depth}$", fontsize=9)
    style.panel_labels(axes)
    return fig


@receptive_fields.checks
def _(r):
    m = r.metrics
    n = m["n"]
    if n <= _BOOK_FIELDS[-1]:
        whole = Check.equal("the fourth layer's unit sees the whole input (all n inputs)", m["measured_counts"][-1], n)
    else:  # H4's field is 11 inputs wide: a longer input is more than it sees
        whole = Check.untested("the fourth layer's unit sees the whole input",
                               f"needs n <= {_BOOK_FIELDS[-1]} inputs, the width of H4's field; n = {n}")
    return [Check.equal("measured receptive fields (gradient support): 3, 5, 7 and 11 inputs, each clipped to the "
                        "n inputs (at n = 11: 3, 5, 7, then the whole input)",
                        m["measured_sizes"], [min(size, n) for size in _BOOK_FIELDS]),
            Check.equal("the formula r_l = r_(l-1) + (k_l - 1)·Π s gives 3, 5, 7, 11", m["analytic_sizes"],
                        list(_BOOK_FIELDS)),
            Check.equal("measured and computed intervals agree", m["measured_intervals"], m["analytic_intervals"]),
            Check.equal("no holes: every input in the interval has a non-zero gradient", m["measured_counts"],
                        m["measured_sizes"]),
            whole,
            Check.holds("every channel at a position has the same field", all(m["channels_agree"]),
                        m["channels_agree"]),
            Check.equal("every unit of every layer: measured field = formula clipped to the input (mismatches)",
                        m["mismatches_every_unit"], 0)]


# --------------------------------------------------------------------------- 10.9
@figure("10.9", title="2D convolutional layer",
        caption="Each output h_ij of a 3 x 3 convolutional layer is a weighted sum of the nine nearest inputs plus a "
                "bias, passed through a ReLU. a) h23 (cyan) depends exactly on x12..x34 (orange: inputs with a "
                "non-zero gradient, measured). b) Sliding the kernel moves the neighbourhood. c-d) At the edges "
                "the zero-padding (dashed) fills in for the missing inputs, so fewer real inputs contribute. "
                "Computed with udl's conv2d and compared with torch.nn.functional.conv2d.",
        params={"tiny": dict(height=6, width=6, n_probes=32, n_random=4),
                "full": dict(height=6, width=6, n_probes=64, n_random=40)},
        # h45 is drawn; a unit is dead on all probes with probability 2^-n_probes; 3 settings reach stride and
        # dilation 2
        limits={"height": (4, 16), "width": (5, 16), "n_probes": (24, 256), "n_random": (3, 1000)})
def conv2d_layer(p, run):
    layer = Conv2d(1, 1, 3, padding=1, generator=run.generator(1)).double()
    net = nn.Sequential(layer, nn.ReLU())
    shape = (1, p.height, p.width)
    units = [(2, 3), (4, 5), (1, 1), (p.height, p.width)]  # 1-based, as the book names them
    metrics = {"height": p.height, "width": p.width, "units": units, "support_rows": [], "support_cols": [],
               "support_counts": [], "mismatches_every_unit": 0}
    arrays = {}
    for k, (i, j) in enumerate(units):
        mask = gradient_support(net, shape, (0, i - 1, j - 1), n_probes=p.n_probes, generator=run.seed)
        (r_lo, r_hi), (c_lo, c_hi) = support_interval(mask)
        metrics["support_rows"].append([r_lo + 1, r_hi + 1])  # 1-based
        metrics["support_cols"].append([c_lo + 1, c_hi + 1])
        metrics["support_counts"].append(int(mask.sum()))
        arrays[f"sensitivity{k}"] = input_sensitivity(net, shape, (0, i - 1, j - 1), n_probes=p.n_probes,
                                                      generator=run.seed).numpy()
    for i in range(p.height):  # every output: support = its 3 x 3 neighbourhood, clipped to the image
        for j in range(p.width):
            expected = torch.zeros(p.height, p.width, dtype=torch.bool)
            expected[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2] = True
            got = gradient_support(net, shape, (0, i, j), n_probes=p.n_probes, generator=run.seed)
            metrics["mismatches_every_unit"] += int((got != expected).sum())
    x = _small_ints(run.rng, (1, 1, p.height, p.width))
    with torch.no_grad():
        z = conv2d(x, layer.weight, layer.bias, padding=1)
        xp = F.pad(x, (1, 1, 1, 1))[0, 0]  # zero-padded, for the weighted sum by hand
        omega, beta = layer.weight[0, 0], layer.bias[0]
        # h_23 = β + Σ_m Σ_n ω_mn x_(2+m-2, 3+n-2)  (UDL eq. 10.6, 1-based; padded index shifts by one)
        hand = beta + sum(omega[m, n] * xp[1 + m, 2 + n] for m in range(3) for n in range(3))
        metrics["h23_minus_hand"] = abs(z[0, 0, 1, 2].item() - hand.item())
        metrics["max_abs_diff_torch"] = max_difference(z, F.conv2d(x, layer.weight, layer.bias, padding=1))
        g, worst = run.generator(2), 0.0
        for t in range(p.n_random):
            k, s, d, pad = 1 + t % 4, 1 + t % 2, 1 + (t // 2) % 2, t % 3
            xr = torch.randn(2, 3, 9 + t % 4, 8 + t % 3, generator=g, dtype=torch.float64)
            wr = torch.randn(2, 3, k, k, generator=g, dtype=torch.float64)
            worst = max(worst, max_difference(conv2d(xr, wr, stride=s, padding=pad, dilation=d),
                                              F.conv2d(xr, wr, stride=s, padding=pad, dilation=d)))
        metrics["max_abs_diff_random"] = worst
    metrics["output_shape"] = list(z.shape[2:])
    return Result(metrics=metrics, arrays=arrays)


@conv2d_layer.plot
def _(r):
    m, a = r.metrics, r.arrays
    h, w = m["height"], m["width"]
    fig, axes = style.subplots(2, 2, width=3.6, height=2.3)
    for k, ax in enumerate(axes.flat):
        i, j = m["units"][k]
        sens = a[f"sensitivity{k}"]
        faces = [[drawing.light(style.DATA, 0.3 + 0.7 * sens[y, x] / sens.max()) if sens[y, x] > 0 else "white"
                  for x in range(w)] for y in range(h)]
        drawing.grid(ax, None, (0, 0), faces=np.array(faces, dtype=object), size=0.9)
        for y in range(-1, h + 1):  # the padding ring, dashed where the kernel reaches it
            for x in range(-1, w + 1):
                if (0 <= y < h and 0 <= x < w) or abs(y - (i - 1)) > 1 or abs(x - (j - 1)) > 1:
                    continue
                drawing.cell(ax, x, -y, "0", face=drawing.light(style.REGION, 0.5), edge=style.REGION, ls="--",
                             size=0.9)
        out = [[drawing.light(style.MODEL, 0.9) if (y, x) == (i - 1, j - 1) else "white" for x in range(w)]
               for y in range(h)]
        drawing.grid(ax, None, (w + 2.5, 0), faces=np.array(out, dtype=object), size=0.9)
        ax.annotate("", xy=(w + 1.8, -(h - 1) / 2), xytext=(w + 0.3, -(h - 1) / 2),
                    arrowprops=dict(arrowstyle="-|>", color="black", lw=1))
        rows, cols = m["support_rows"][k], m["support_cols"][k]
        ax.set_title(f"$h_{{{i}{j}}}$ ← $x_{{{rows[0]}{cols[0]}}}$..$x_{{{rows[1]}{cols[1]}}}$ "
                     f"({m['support_counts'][k]} inputs)", fontsize=9)
        ax.text((w - 1) / 2, -h - 0.75, "input x", ha="center", va="center", fontsize=8)
        ax.text(w + 2.5 + (w - 1) / 2, -h - 0.75, "output h", ha="center", va="center", fontsize=8)
        drawing.frame(ax, (-1.7, 2 * w + 2.2), (-h - 1.1, 1.7))
    style.panel_labels(axes)
    return fig


@conv2d_layer.checks
def _(r):
    m = r.metrics
    return [Check.equal("h23 depends on rows 1-3 (measured gradient support)", m["support_rows"][0], [1, 3]),
            Check.equal("h23 depends on columns 2-4", m["support_cols"][0], [2, 4]),
            Check.equal("nine inputs for an inner unit, four at a corner (the rest is padding)",
                        [m["support_counts"][0], m["support_counts"][2], m["support_counts"][3]], [9, 4, 4]),
            Check.equal("every output: support = its 3 x 3 neighbourhood clipped to the image (mismatches)",
                        m["mismatches_every_unit"], 0),
            Check.close("h23 = β + Σ ω_mn x_(i+m-2, j+n-2) by hand", m["h23_minus_hand"], 0.0, 1e-12),
            Check.close("udl's conv2d equals F.conv2d", m["max_abs_diff_torch"], 0.0, 1e-12),
            Check.close("and on random inputs, strides, dilations and channels", m["max_abs_diff_random"], 0.0,
                        1e-12),
            Check.equal("zero-padding keeps the image size", m["output_shape"], [m["height"], m["width"]])]


# --------------------------------------------------------------------------- 10.10
_LUMA = (0.299, 0.587, 0.114)  # grey level from red, green and blue (ITU-R BT.601)
_SOBEL = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))  # a change from left to right, smoothed
_KERNELS = ("blur", "vertical edges", "horizontal edges", "red minus green")


def _photo_size(downscale: int) -> tuple[int, int]:
    """(H, W) of the photograph at ``downscale``."""
    return load_photo("china", downscale=downscale).shape[:2]


def _photo_tensor(downscale: int) -> torch.Tensor:
    img = load_photo("china", downscale=downscale)  # (H, W, 3) in [0, 1]
    return torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()  # (1, 3, H, W)


def _rgb_kernels() -> torch.Tensor:
    """Four 3 x 3 x 3 kernels (C_out=4, C_in=3, 3, 3): the figure's choice of filters."""
    luma = torch.tensor(_LUMA)[:, None, None]  # (3, 1, 1)
    sobel = torch.tensor(_SOBEL) / 4  # (3, 3)
    blur = torch.full((3, 3, 3), 1 / 27)  # the mean of the 27 values under the kernel
    colour = torch.zeros(3, 3, 3)
    colour[0], colour[1] = 1 / 9, -1 / 9  # red minus green, averaged over the 3 x 3 patch
    return torch.stack([blur, luma * sobel, luma * sobel.T, colour])  # (4, 3, 3, 3)


@figure("10.10", title="2D convolution of an RGB photograph",
        caption="A colour photograph (scikit-learn's sample image, reduced) is a 2D input with three channels: "
                "red, green and blue. Each 3 x 3 x 3 kernel multiplies the 27 values of the patch around a pixel, "
                "sums them and adds a bias; sliding it over every position gives one output channel. Four kernels "
                "(a blur, two edge detectors, a red-minus-green contrast) give four channels: a 3D tensor of "
                "hidden units. Zero-padding keeps the image's size.",
        params={"tiny": dict(downscale=8, patch_row=20, patch_col=30),
                "full": dict(downscale=4, patch_row=40, patch_col=60)},
        limits={"downscale": (1, 64), "patch_row": (1, 425), "patch_col": (1, 638)})
def rgb_convolution(p, run):
    x = _photo_tensor(p.downscale)  # (1, 3, H, W)
    omega = _rgb_kernels()  # (4, 3, 3, 3)
    beta = torch.zeros(len(_KERNELS))
    h = conv2d(x, omega, beta, padding=1)  # (1, 4, H, W)
    valid = conv2d(x, omega, beta, padding="valid")
    _, c, height, width = x.shape
    i, j = p.patch_row, p.patch_col
    patch = x[0, :, i - 1:i + 2, j - 1:j + 2]  # (3, 3, 3): the RGB patch centred on (i, j)
    flat = conv2d(torch.full((1, 3, 8, 8), 0.6), omega, padding="valid")  # a featureless image
    return Result(
        metrics={"input_shape": [c, height, width], "n_kernels": len(_KERNELS), "kernel_shape": list(omega.shape[1:]),
                 "output_shape": list(h.shape[1:]), "valid_shape": list(valid.shape[1:]),
                 "formula_shape": [conv_output_length(height, 3, 1, 1), conv_output_length(width, 3, 1, 1)],
                 "formula_valid_shape": [conv_output_length(height, 3, 1, "valid"),
                                         conv_output_length(width, 3, 1, "valid")],
                 "max_abs_diff_torch": max_difference(h, F.conv2d(x, omega, beta, padding=1)),
                 "max_abs_diff_torch_valid": max_difference(valid, F.conv2d(x, omega, beta)),
                 "patch_sum_minus_output": [abs((omega[o] * patch).sum().item() + beta[o].item()
                                                - h[0, o, i, j].item()) for o in range(len(_KERNELS))],
                 "edge_response_flat_image": flat[0, 1:3].abs().max().item(),
                 "blur_response_flat_image": flat[0, 0].mean().item()},
        arrays={"image": x[0].permute(1, 2, 0).numpy(), "h": h[0].numpy(), "omega": omega.numpy()},
        notes=f"The photograph is reduced {p.downscale}x by averaging blocks of pixels; the kernels are chosen "
              "filters (not learned) so that the channels are easy to read.")


@rgb_convolution.requires
def _(p):
    for key, size in zip(("patch_row", "patch_col"), _photo_size(p.downscale)):
        if getattr(p, key) > size - 2:  # the 3 x 3 patch around it must lie inside the photograph
            raise ValueError(f"The {key!r} parameter of figure 10.10 must be at most {size - 2} (the photograph is "
                             f"{size} pixels {'high' if key == 'patch_row' else 'wide'} at downscale {p.downscale}). "
                             f"Got {getattr(p, key)} instead.")


@rgb_convolution.plot
def _(r):
    a, m = r.arrays, r.metrics
    fig, axes = style.subplots(2, 3, width=3.0, height=2.3)
    i, j = r.params.get("patch_row", 0), r.params.get("patch_col", 0)
    ax = axes[0, 0]
    drawing.image(ax, np.clip(a["image"], 0, 1), f"input: 3 x {m['input_shape'][1]} x {m['input_shape'][2]}",
                  fontsize=9)
    ax.add_patch(Rectangle((j - 1.5, i - 1.5), 3, 3, fill=False, ec=style.MODEL, lw=1.5))
    ax = axes[0, 1]  # one kernel's three 3 x 3 slices, side by side
    omega = a["omega"][1]  # (3, 3, 3): vertical edges
    tiles = np.full((3, 11), np.nan)
    for c in range(3):
        tiles[:, 4 * c:4 * c + 3] = omega[c]
    lim = np.nanmax(np.abs(tiles))
    drawing.image(ax, tiles, "a 3 x 3 x 3 kernel (vertical edges)", fontsize=9, cmap="RdBu_r", vmin=-lim, vmax=lim)
    for c, name in enumerate("RGB"):
        ax.text(4 * c + 1, 2.9, name, ha="center", va="top", fontsize=9)
    for k, (ax, name) in enumerate(zip([axes[0, 2], axes[1, 0], axes[1, 1], axes[1, 2]], _KERNELS)):
        out = a["h"][k]
        title = f"channel {k + 1}: {name}"
        if k == 0:
            drawing.image(ax, out, title, fontsize=9, cmap="gray")
        else:  # the padded border gives the strongest edges: scale to the image's own
            lim = np.percentile(np.abs(out[1:-1, 1:-1]), 99.5)
            drawing.image(ax, out, title, fontsize=9, cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.suptitle(f"output: {m['output_shape'][0]} channels x {m['output_shape'][1]} x {m['output_shape'][2]}",
                 fontsize=9)
    style.panel_labels(axes)
    return fig


@rgb_convolution.checks
def _(r):
    m = r.metrics
    return [Check.equal("one output channel per kernel", m["output_shape"][0], m["n_kernels"]),
            Check.equal("each kernel is 3 x 3 x 3 (all three colour channels)", m["kernel_shape"], [3, 3, 3]),
            Check.equal("zero-padded output size = formula = input size", m["output_shape"][1:],
                        m["formula_shape"]),
            Check.equal("'valid' output size = formula (two rows and columns fewer)", m["valid_shape"][1:],
                        m["formula_valid_shape"]),
            Check.close("udl's conv2d equals F.conv2d on the photograph", m["max_abs_diff_torch"], 0.0, 1e-5),
            Check.close("and for 'valid'", m["max_abs_diff_torch_valid"], 0.0, 1e-5),
            Check.less("each output = Σ kernel x RGB patch + bias (worst of the kernels)",
                       max(m["patch_sum_minus_output"]), 1e-5),
            Check.less("edge kernels give zero on a featureless image", m["edge_response_flat_image"], 1e-6),
            Check.close("the blur keeps a featureless image's level (0.6)", m["blur_response_flat_image"], 0.6, 1e-6)]


# --------------------------------------------------------------------------- 10.11
def _photo_factor_fits(p, fig_id: str) -> None:
    """The pooling factor must leave at least one block of the photograph in each direction."""
    size = min(_photo_size(p.downscale))
    if p.photo_factor > size:
        raise ValueError(f"The 'photo_factor' parameter of figure {fig_id} must be at most {size} (the photograph's "
                         f"smaller side at downscale {p.downscale}). Got {p.photo_factor} instead.")


def _blocks_by_hand(a: np.ndarray, f: int = 2):
    """Sub-sampling, max and mean of f x f blocks with plain loops: an independent reference."""
    n_rows, n_cols = a.shape[0] // f, a.shape[1] // f
    sub, mx, mean = (np.zeros((n_rows, n_cols)) for _ in range(3))
    for i in range(n_rows):
        for j in range(n_cols):
            block = [a[f * i + u, f * j + v] for u in range(f) for v in range(f)]
            sub[i, j] = a[f * i, f * j]
            mx[i, j] = max(block)
            mean[i, j] = sum(block) / len(block)
    return sub, mx, mean


@figure("10.11", title="Downsampling: sub-sampling, max pooling, mean pooling",
        caption="Three ways to halve a representation. a) Sub-sampling keeps every other value (the top-left of "
                "each 2 x 2 block); colours mark the blocks. b) Max pooling keeps the largest value of each block. "
                "c) Mean pooling keeps the block's mean. Bottom: the same operations on a photograph: "
                "sub-sampling aliases fine detail, max pooling brightens, mean pooling blurs.",
        params={"tiny": dict(downscale=8, photo_factor=2), "full": dict(downscale=4, photo_factor=4)},
        limits={"downscale": (1, 64), "photo_factor": (2, 64)})
def downsampling(p, run):
    a = run.rng.integers(0, 10, size=(4, 4)).astype(np.float64)
    x = torch.from_numpy(a)[None, None]  # (1, 1, 4, 4)
    hand = _blocks_by_hand(a)
    ours = [subsample(x)[0, 0].numpy(), max_pool2d(x)[0, 0].numpy(), mean_pool2d(x)[0, 0].numpy()]
    photo = _photo_tensor(p.downscale)  # (1, 3, H, W)
    f = p.photo_factor
    outs = {"subsample": subsample(photo, f), "max": max_pool2d(photo, f), "mean": mean_pool2d(photo, f)}
    refs = {"subsample": photo[:, :, ::f, ::f], "max": F.max_pool2d(photo, f), "mean": F.avg_pool2d(photo, f)}
    metrics = {"example": a.tolist(), "hand_subsample": hand[0].tolist(), "hand_max": hand[1].tolist(),
               "hand_mean": hand[2].tolist(), "photo_shape": list(photo.shape[1:]), "photo_factor": f}
    for name, h, o in zip(("subsample", "max", "mean"), hand, ours):
        metrics[f"example_{name}_minus_hand"] = float(np.abs(o - h).max())
        metrics[f"example_{name}_shape"] = list(o.shape)
    for name in outs:
        metrics[f"photo_{name}_minus_torch"] = max_difference(outs[name], refs[name])
        metrics[f"photo_{name}_shape"] = list(outs[name].shape[1:])
    metrics["example_max_minus_torch"] = max_difference(max_pool2d(x), F.max_pool2d(x, 2))
    metrics["example_mean_minus_torch"] = max_difference(mean_pool2d(x), F.avg_pool2d(x, 2))
    arrays = {"example": a, "subsample": ours[0], "max": ours[1], "mean": ours[2],
              "photo": photo[0].permute(1, 2, 0).numpy()}
    arrays.update({f"photo_{k}": v[0].permute(1, 2, 0).numpy() for k, v in outs.items()})
    return Result(metrics=metrics, arrays=arrays)


_BLOCK_COLOURS = (style.DATA, style.MODEL, style.EXTRA[0], style.EXTRA[1])


def _block_faces(rows, cols, f=2, amount=0.35):
    return np.array([[drawing.light(_BLOCK_COLOURS[(i // f) * (cols // f) + j // f], amount) for j in range(cols)]
                     for i in range(rows)], dtype=object)


def _block_colour(i: int, j: int) -> tuple[float, float, float]:
    """The strong shade of the colour of the 2 x 2 block that holds entry (i, j) of a 4 x 4 example."""
    return drawing.light(_BLOCK_COLOURS[(i // 2) * 2 + j // 2], 0.8)


def _number_panel(ax, values, title, origin=(0.0, 0.0), **grid):
    """A 2 x 2 or 4 x 4 example of the pooling figures as numbered cells, on the same 4 x 4 canvas."""
    drawing.grid(ax, values, origin, fmt=_fmt, size=0.9, **grid)
    drawing.frame(ax, (-0.6, 3.6), (-3.6, 0.6))
    ax.set_title(title, fontsize=9)


@downsampling.requires
def _(p):
    _photo_factor_fits(p, "10.11")


@downsampling.plot
def _(r):
    a = r.arrays
    fig, axes = style.subplots(2, 4, width=2.2, height=2.1)
    ex = a["example"]
    faces = _block_faces(4, 4)
    edges = np.full((4, 4), "black", dtype=object)
    ax = axes[0, 0]
    _number_panel(ax, ex, "input", faces=faces, edges=edges)
    for i in range(0, 4, 2):  # the values sub-sampling keeps
        for j in range(0, 4, 2):
            drawing.cell(ax, j, -i, _fmt(ex[i, j]), face=_block_colour(i, j), lw=2.0)
    for ax, name, title in zip(axes[0, 1:], ("subsample", "max", "mean"), ("sub-sampling", "max pooling",
                                                                          "mean pooling")):
        _number_panel(ax, a[name], title, (1.0, -1.0), faces=_block_faces(2, 2, f=1, amount=0.8))
    f = r.metrics["photo_factor"]
    for ax, name, title in zip(axes[1], ("photo", "photo_subsample", "photo_max", "photo_mean"),
                               ("photo", f"sub-sampled {f}x", f"max pooled {f}x{f}", f"mean pooled {f}x{f}")):
        drawing.image(ax, np.clip(a[name], 0, 1), title, sized=True, interpolation="nearest")
    style.panel_labels(axes[0, 1:])
    return fig


@downsampling.checks
def _(r):
    m = r.metrics
    h, w = m["photo_shape"][1:]
    f = m["photo_factor"]
    return [Check.close("sub-sampling the 4 x 4 example matches the hand computation",
                        m["example_subsample_minus_hand"], 0.0, 0.0),
            Check.close("max pooling matches the hand computation", m["example_max_minus_hand"], 0.0, 0.0),
            Check.close("mean pooling matches the hand computation", m["example_mean_minus_hand"], 0.0, 0.0),
            Check.equal("4 x 4 becomes 2 x 2 (each method)", [m["example_subsample_shape"], m["example_max_shape"],
                                                              m["example_mean_shape"]], [[2, 2]] * 3),
            Check.close("max pooling equals F.max_pool2d (example)", m["example_max_minus_torch"], 0.0, 0.0),
            Check.close("mean pooling equals F.avg_pool2d (example)", m["example_mean_minus_torch"], 0.0, 1e-12),
            Check.close("photo: sub-sampling equals x[..., ::f, ::f]", m["photo_subsample_minus_torch"], 0.0, 0.0),
            Check.close("photo: max pooling equals F.max_pool2d", m["photo_max_minus_torch"], 0.0, 0.0),
            # a float32 sum of f² values in [0, 1] may round by up to f²·ε in either order of summation
            Check.close("photo: mean pooling equals F.avg_pool2d", m["photo_mean_minus_torch"], 0.0,
                        max(1e-6, f * f * float(np.finfo(np.float32).eps))),
            Check.equal("photo: the pooled size is the input size / f", m["photo_max_shape"],
                        [3, h // f, w // f])]


# --------------------------------------------------------------------------- 10.12
@figure("10.12", title="Upsampling: duplication, max unpooling, bilinear interpolation",
        caption="Three ways to double a representation. a) Duplication copies each value into a 2 x 2 block. "
                "b) Max unpooling puts each value back where the maximum of its block was found by the earlier "
                "max pooling (the 4 x 4 input on the left) and zeros elsewhere. c) Bilinear interpolation blends "
                "the four nearest values (PyTorch's align_corners=False convention: pixels are areas). Bottom: a "
                "max-pooled photograph (in grey levels) brought back to full size each way.",
        params={"tiny": dict(downscale=8, photo_factor=2), "full": dict(downscale=4, photo_factor=4)},
        limits={"downscale": (1, 64), "photo_factor": (2, 64)})
def upsampling(p, run):
    a = run.rng.integers(1, 10, size=(4, 4)).astype(np.float64)  # no zeros: a zero marks "no maximum"
    x = torch.from_numpy(a)[None, None]  # (1, 1, 4, 4)
    pooled, idx = max_pool2d(x, return_indices=True)  # (1, 1, 2, 2) each
    up = {"nearest": upsample_nearest(pooled), "unpool": max_unpool2d(pooled, idx, (4, 4)),
          "bilinear": upsample_bilinear(pooled)}
    nonzero = up["unpool"].flatten().nonzero().flatten()
    metrics = {"example": a.tolist(), "pooled": pooled[0, 0].tolist(), "pool_indices": sorted(idx.flatten().tolist()),
               "unpool_nonzero_positions": nonzero.tolist(),
               "unpool_values_at_indices_minus_pooled": max_difference(up["unpool"].flatten()[idx.flatten()],
                                                                       pooled.flatten()),
               "unpool_equals_input_at_maxima": max_difference(up["unpool"].flatten()[nonzero], x.flatten()[nonzero]),
               "example_nearest_block_error": max_difference(up["nearest"][0, 0].view(2, 2, 2, 2),
                                                             pooled[0, 0][:, None, :, None].expand(2, 2, 2, 2)),
               "example_bilinear_minus_torch": max_difference(up["bilinear"], F.interpolate(pooled, scale_factor=2,
                                                                                            mode="bilinear"))}
    # the photograph: max pool by f (with indices), then back up by f
    rgb = _photo_tensor(p.downscale)  # (1, 3, H, W)
    photo = (torch.tensor(_LUMA)[None, :, None, None] * rgb).sum(1, keepdim=True)  # grey: (1, 1, H, W)
    f = p.photo_factor
    _, c, height, width = photo.shape
    photo = photo[:, :, :height // f * f, :width // f * f]  # whole blocks only
    small, where = max_pool2d(photo, f, return_indices=True)
    size = tuple(photo.shape[2:])
    photo_up = {"nearest": upsample_nearest(small, f), "unpool": max_unpool2d(small, where, size),
                "bilinear": upsample_bilinear(small, f)}
    kept = torch.zeros(photo.shape[0], c, size[0] * size[1], dtype=torch.bool)
    kept.scatter_(2, where.flatten(2), True)  # the positions the maxima came from
    flat_up = photo_up["unpool"].flatten(2)
    blocks = photo_up["nearest"].view(1, c, small.shape[2], f, small.shape[3], f)
    metrics.update({
        "photo_shape": list(photo.shape[1:]), "photo_factor": f,
        "photo_upsampled_shapes": [list(v.shape[1:]) for v in photo_up.values()],
        "photo_unpool_nonzero_off_maxima": int((flat_up[~kept] != 0).sum()),
        "photo_unpool_minus_input_at_maxima": max_difference(flat_up[kept], photo.flatten(2)[kept]),
        "photo_unpool_minus_torch": max_difference(photo_up["unpool"],
                                                   F.max_unpool2d(small, where, f, output_size=size)),
        "photo_nearest_block_error": max_difference(blocks, small[:, :, :, None, :, None].expand_as(blocks)),
        "photo_nearest_minus_torch": max_difference(photo_up["nearest"], F.interpolate(small, scale_factor=f,
                                                                                       mode="nearest")),
        "photo_bilinear_minus_torch": max_difference(photo_up["bilinear"], F.interpolate(
            small, scale_factor=f, mode="bilinear", align_corners=False)),
        "photo_bilinear_corners_minus_torch": max_difference(upsample_bilinear(small, f, align_corners=True),
                                                             F.interpolate(small, scale_factor=f, mode="bilinear",
                                                                           align_corners=True))})
    arrays = {"example": a, "pooled": pooled[0, 0].numpy(), "indices": idx[0, 0].numpy(),
              **{k: v[0, 0].numpy() for k, v in up.items()},
              "photo": photo[0, 0].numpy(), "photo_small": small[0, 0].numpy(),
              **{f"photo_{k}": v[0, 0].numpy() for k, v in photo_up.items()}}
    return Result(metrics=metrics, arrays=arrays)


@upsampling.requires
def _(p):
    _photo_factor_fits(p, "10.12")


@upsampling.plot
def _(r):
    a = r.arrays
    fig, axes = style.subplots(2, 5, width=2.1, height=2.1)
    faces4 = _block_faces(4, 4, amount=0.25)
    maxima = {int(v) for v in a["indices"].flatten()}
    ax = axes[0, 0]
    _number_panel(ax, a["example"], "before max pooling", faces=faces4)
    for k in maxima:  # where the maxima were
        i, j = divmod(k, 4)
        drawing.cell(ax, j, -i, _fmt(a["example"][i, j]), face=_block_colour(i, j), lw=2.0)
    _number_panel(axes[0, 1], a["pooled"], "input (2 x 2)", (1.0, -1.0), faces=_block_faces(2, 2, f=1, amount=0.8))
    for ax, name, title in zip(axes[0, 2:], ("nearest", "unpool", "bilinear"),
                               ("duplication", "max unpooling", "bilinear")):
        faces = _block_faces(4, 4, amount=0.8 if name != "unpool" else 0.0)
        if name == "unpool":
            for k in maxima:
                i, j = divmod(k, 4)
                faces[i, j] = _block_colour(i, j)
        _number_panel(ax, a[name], title, faces=faces)
    f = r.metrics["photo_factor"]
    for ax, name, title in zip(axes[1], ("photo", "photo_small", "photo_nearest", "photo_unpool", "photo_bilinear"),
                               ("photo", f"max pooled {f}x{f}", "duplicated", "max unpooled", "bilinear")):
        drawing.image(ax, np.clip(a[name], 0, 1), title, sized=True, cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
    style.panel_labels(axes[0, 2:])
    return fig


@upsampling.checks
def _(r):
    m = r.metrics
    return [Check.equal("unpooling: the non-zero values sit exactly at the pooling's argmax indices",
                        m["unpool_nonzero_positions"], m["pool_indices"]),
            Check.close("unpooling: the values there are the pooled values", m["unpool_values_at_indices_minus_pooled"],
                        0.0, 0.0),
            Check.close("unpooling: each maximum returns to where it was in the input",
                        m["unpool_equals_input_at_maxima"], 0.0, 0.0),
            Check.equal("photo: unpooling leaves zeros everywhere else (non-zeros off the maxima)",
                        m["photo_unpool_nonzero_off_maxima"], 0),
            Check.close("photo: unpooled values equal the input at the maxima", m["photo_unpool_minus_input_at_maxima"],
                        0.0, 0.0),
            Check.close("photo: unpooling equals F.max_unpool2d", m["photo_unpool_minus_torch"], 0.0, 0.0),
            Check.close("duplication: each value fills its 2 x 2 block", m["example_nearest_block_error"], 0.0, 0.0),
            Check.close("photo: each value fills its f x f block", m["photo_nearest_block_error"], 0.0, 0.0),
            Check.close("duplication equals F.interpolate(mode='nearest')", m["photo_nearest_minus_torch"], 0.0, 0.0),
            Check.close("bilinear equals F.interpolate(mode='bilinear') (example)", m["example_bilinear_minus_torch"],
                        0.0, 1e-12),
            Check.close("photo: bilinear equals F.interpolate (align_corners=False)", m["photo_bilinear_minus_torch"],
                        0.0, 1e-6),
            Check.close("photo: and with align_corners=True", m["photo_bilinear_corners_minus_torch"], 0.0, 1e-6),
            Check.equal("every method restores the photo's size", m["photo_upsampled_shapes"],
                        [m["photo_shape"]] * 3)]
