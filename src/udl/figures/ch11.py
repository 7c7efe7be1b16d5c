"""Chapter 11: residual networks — variance through depth, ResNet blocks, ResNet-200, DenseNet (figs. 11.6-11.9)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import Patch
from torch import nn

from udl import drawing, style
from udl.analysis.receptive_field import gradient_support, support_interval
from udl.data.images import load_photo
from udl.models.densenet import DenseBlock, Transition
from udl.models.resnet import ResNet, ResNetConfig, resnet200
from udl.nn.conv import conv_output_length
from udl.nn.residual import (VARIANCE_KINDS, BottleneckBlock, ResidualBlock, count_parameters, mean_squares,
                             variance_network)
from udl.registry import Check, Limit, Result, figure


def _square_photo(size: int) -> torch.Tensor:
    """scikit-learn's 'china' photograph, centre-cropped to a square and resized to size × size: (1, 3, size, size)."""
    img = torch.from_numpy(load_photo("china")).permute(2, 0, 1)[None]  # (1, 3, 427, 640), in [0, 1]
    h, w = img.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    img = img[..., top:top + side, left:left + side]  # (1, 3, side, side)
    return F.interpolate(img, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def _standardise(img: torch.Tensor) -> torch.Tensor:
    """Zero mean and unit variance per colour channel (what a network's input normalisation does)."""
    mean = img.mean(dim=(0, 2, 3), keepdim=True)
    std = img.std(dim=(0, 2, 3), keepdim=True)
    return (img - mean) / std


def _linear_fit(k: np.ndarray, q: np.ndarray) -> tuple[float, float, float]:
    """Least-squares line q ≈ a + b·k: (a, b, R²)."""
    b, a = np.polyfit(k, q, 1)
    residual = q - (a + b * k)
    r2 = 1.0 - float(residual @ residual) / float(((q - q.mean()) ** 2).sum())
    return float(a), float(b), r2


# --------------------------------------------------------------------------- 11.6
_KIND_TITLES = {"plain": "plain: h ← f[h]", "residual": "residual: h ← h + f[h]",
                "scaled": "scaled: h ← (h + f[h]) / √2", "batchnorm": "BN first: h ← h + f[BN[h]]"}


@figure("11.6", title="Variance through depth in residual networks",
        caption="Measured on random inputs (N(0, 1), N samples of width D) passed through fully connected networks "
                "at He initialisation. Every block's layer is f[h] = Ω·ReLU[h] with Ω ~ N(0, 2/D), the "
                "pre-activation order of the book's ResNet blocks; the 'variance' plotted (gray numbers) is the "
                "mean square of the activations over units and samples, averaged over several random networks, "
                "which He initialisation keeps and which equals the variance for these zero-mean activations. "
                "a) A plain stack keeps it. b) Adding each block's input back doubles it per block: exponential "
                "growth. c) Scaling each block's sum by 1/√2 keeps it. d) With batch norm first in each branch "
                "(offset δ = 0, scale γ = 1) every branch adds one unit, so it grows linearly (1, 2, 3, ...), and "
                "the last blocks change the signal little: they are close to the identity. Dashed: the "
                "prediction.",
        params={"tiny": dict(width=256, n_samples=512, depth=8, n_networks=3),
                "full": dict(width=512, n_samples=1024, depth=10, n_networks=4)},
        limits={"width": (128, 4096), "n_samples": (128, 8192), "depth": (2, 40), "n_networks": (1, 16)})
def variance_through_depth(p, run):
    g = run.generator(0)
    metrics, arrays = {"depth": p.depth, "width": p.width, "n_samples": p.n_samples, "n_networks": p.n_networks}, {}
    last_fraction = []
    for kind in VARIANCE_KINDS:
        runs = []
        for _ in range(p.n_networks):
            net = variance_network(kind, p.width, p.depth, generator=g)
            x = torch.randn(p.n_samples, p.width, generator=g)  # h_0, unit variance
            runs.append(mean_squares(net, x))
            if kind == "batchnorm":  # how much the last block changes its input: E[f²] / E[h²]
                with torch.no_grad():
                    before = net[:-1](x)
                    after = net[-1](before)
                last_fraction.append(((after - before).square().mean() / before.square().mean()).item())
        q = torch.stack(runs).mean(0).numpy().astype(np.float64)  # (depth + 1,)
        arrays[kind] = q
        ratio = q[1:] / q[:-1]
        metrics[f"q_{kind}"] = q.tolist()
        metrics[f"per_block_{kind}"] = float((q[-1] / q[0]) ** (1 / p.depth))  # geometric mean of the ratios
        metrics[f"step_ratio_range_{kind}"] = [float(ratio.min()), float(ratio.max())]
    k = np.arange(p.depth + 1, dtype=np.float64)
    a, b, r2 = _linear_fit(k, arrays["batchnorm"])
    _, slope_log2, r2_log = _linear_fit(k, np.log2(arrays["residual"]))
    metrics.update(bn_intercept=a, bn_slope=b, bn_r2=r2, residual_log2_slope=slope_log2, residual_log2_r2=r2_log,
                   bn_over_residual_final=float(arrays["batchnorm"][-1] / arrays["residual"][-1]),
                   bn_last_block_change=float(np.mean(last_fraction)))
    return Result(metrics=metrics, arrays=arrays,
                  notes="Fully connected layers stand in for the convolutions of a ResNet; the book's figure is a "
                        "diagram with the expected values, here they are measured.")


@variance_through_depth.plot
def _(r):
    fig, axes = style.subplots(1, 4, width=2.9, height=2.9, sharey=True)
    depth = r.metrics["depth"]
    k = np.arange(depth + 1)
    predicted = {"plain": np.ones_like(k, dtype=float), "residual": 2.0 ** k, "scaled": np.ones_like(k, dtype=float),
                 "batchnorm": 1.0 + k}
    for ax, kind in zip(axes, VARIANCE_KINDS):
        q = r.arrays[kind]
        ax.plot(k, predicted[kind], "--", color=style.TRUTH, lw=0.9, label="prediction")
        ax.plot(k, q, "o-", color=style.MODEL, ms=4, label="measured")
        for ki, qi in zip(k, q):
            ax.annotate(f"{qi:.0f}" if qi >= 10 else f"{qi:.2g}", (ki, qi), textcoords="offset points",
                        xytext=(0, 6), ha="center", fontsize=6.5,
                        color="0.45")
        ax.set_yscale("log", base=2)
        ax.set_xlabel("block k")
        ax.set_title(_KIND_TITLES[kind], fontsize=8.5)
        rate = f"+{r.metrics['bn_slope']:.2f}" if kind == "batchnorm" else f"×{r.metrics[f'per_block_{kind}']:.2f}"
        ax.text(0.5, 0.95, f"measured: {rate} per block", transform=ax.transAxes,
                ha="center", va="top", fontsize=7.5, color=style.MODEL)
    axes[0].set_ylabel("variance E[h²]")
    axes[1].legend(loc="upper left", bbox_to_anchor=(0.0, 0.88), fontsize=7)
    axes[0].set_ylim(0.5, 2.0 ** (depth + 1.5))
    style.panel_labels(axes)
    return fig


# A rate per block is measured on width x depth x n_networks block outputs: its spread over seeds is
# about 1.7 / sqrt(that number) (measured, 20 seeds: 0.053 at 1,024, 0.020 at 6,144), under a quarter
# of the checks' tolerance of 0.1 only from 4,096 on.
_RATIO_SAMPLE = 4096
# From this depth linear growth, 1 + depth, is under a fifteenth of 2^depth: "far below" can be measured.
_FAR_DEPTH = 7


@variance_through_depth.checks
def _(r):
    m = r.metrics
    depth = m["depth"]
    checks = [Check.close("a plain He-initialised stack keeps the variance (ratio per block)", m["per_block_plain"],
                          1.0, 0.1),
              Check.close("a residual block doubles the variance (ratio per block)", m["per_block_residual"], 2.0,
                          0.2),
              Check.greater("the residual network's growth is exponential (R² of log₂ variance against k)",
                            m["residual_log2_r2"], 0.99),
              Check.close("scaling each block by 1/√2 keeps the variance (ratio per block)", m["per_block_scaled"],
                          1.0, 0.1),
              Check.greater("with batch norm first the variance grows linearly (R² of a line)", m["bn_r2"], 0.98),
              Check.close("... by one unit per block (the slope of the line)", m["bn_slope"], 1.0, 0.15),
              Check.less("... far below the exponential growth (final variance, BN / plain residual)",
                         m["bn_over_residual_final"], 0.1),
              Check.close("the last BN block is close to the identity: E[f²] / E[h²] ≈ 1 / depth",
                          m["bn_last_block_change"], 1.0 / depth, 0.25, rel=True)]
    sample = m["width"] * depth * m["n_networks"]
    if sample < _RATIO_SAMPLE:  # the rates per block (0, 1, 3, 5) drown in sampling noise
        why = (f"needs width x depth x n_networks >= {_RATIO_SAMPLE} to measure a rate per block to ±0.1 "
               f"(here {sample})")
        checks = [Check.untested(c.claim, why) if i in (0, 1, 3, 5) else c for i, c in enumerate(checks)]
    if depth < _FAR_DEPTH:  # 1 + depth and 2^depth are still close
        checks[6] = Check.untested(checks[6].claim, f"needs depth >= {_FAR_DEPTH}, where 1 + depth is under a "
                                                    f"fifteenth of 2^depth (here depth = {depth})")
    return checks


# --------------------------------------------------------------------------- 11.7
def _trace(block: nn.Module, x: torch.Tensor) -> list[dict]:
    """Every layer of a block's branch with its output shape and parameters (forward hooks)."""
    records = []

    def hook(module, _inputs, output):
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0]
            name = f"{k}×{k} conv" + (f", stride {module.stride[0]}" if module.stride[0] > 1 else "")
        else:
            name = {"BatchNorm2d": "batch norm", "ReLU": "ReLU"}.get(type(module).__name__, type(module).__name__)
        records.append({"layer": name, "shape": list(output.shape[1:]), "params": count_parameters(module)})

    hooks = [m.register_forward_hook(hook) for m in block.branch]
    try:
        with torch.no_grad():
            out = block.eval()(x)
    finally:
        for h in hooks:
            h.remove()
    records.append({"layer": "+ input", "shape": list(out.shape[1:]), "params": 0})
    return records


@figure("11.7", title="Standard and bottleneck ResNet blocks",
        caption="The two ResNet blocks as built by udl (pre-activation order), traced layer by layer with a "
                "tensor of C channels: the shapes and parameter counts are read from the modules. a) The "
                "standard block: batch norm, ReLU and a 3×3 convolution, twice, then the input is added back. "
                "b) The bottleneck block: a 1×1 convolution reduces C channels to B, a 3×3 convolution works on "
                "the B channels, and a second 1×1 convolution restores C so that the input can be added. It still "
                "sees a 3×3 neighbourhood (measured from the gradients), with a fraction of the parameters "
                "(C = 256, B = 64: 70,400 against 1,180,672).",
        params={"tiny": dict(channels=32, bottleneck=8, size=8), "full": dict(channels=256, bottleneck=64, size=56)},
        limits={"channels": (2, 1024), "bottleneck": (1, 1023), "size": (1, 128)})
def resnet_blocks(p, run):
    c, b = p.channels, p.bottleneck
    standard = ResidualBlock(c, generator=run.generator(1))
    bottleneck = BottleneckBlock(c, b, c, generator=run.generator(2))
    x = torch.randn(1, c, p.size, p.size, generator=run.generator(3))
    layers = {"standard": _trace(standard, x), "bottleneck": _trace(bottleneck, x)}
    support = {name: support_interval(gradient_support(block, (c, 9, 9), (0, 4, 4), n_probes=4, generator=run.seed))
               for name, block in (("standard", standard), ("bottleneck", bottleneck))}
    metrics = {"channels": c, "bottleneck": b, "size": p.size, "input_shape": list(x.shape[1:]),
               "standard_params": count_parameters(standard), "bottleneck_params": count_parameters(bottleneck),
               "standard_closed_form": 18 * c * c + 4 * c,  # two 3×3 convolutions C → C, two BNs
               "bottleneck_closed_form": c * b + 9 * b * b + b * c + 2 * (c + 2 * b),  # 1×1, 3×3, 1×1, three BNs
               "standard_rf": [hi - lo + 1 for lo, hi in support["standard"]],
               "bottleneck_rf": [hi - lo + 1 for lo, hi in support["bottleneck"]]}
    for name, recs in layers.items():
        metrics[f"{name}_layers"] = [rec["layer"] for rec in recs]
        metrics[f"{name}_shapes"] = [rec["shape"] for rec in recs]
        metrics[f"{name}_layer_params"] = [rec["params"] for rec in recs]
        metrics[f"{name}_output_shape"] = recs[-1]["shape"]
    metrics["bottleneck_inner_channels"] = [s[0] for s, n in zip(metrics["bottleneck_shapes"],
                                                                 metrics["bottleneck_layers"]) if "3×3" in n]
    return Result(metrics=metrics,
                  notes="" if c == 256 else f"C = {c}, B = {b} (the book's example is C = 256, B = 64).")


@resnet_blocks.requires
def _(p):
    if p.bottleneck >= p.channels:  # a bottleneck narrows: B < C
        raise ValueError(f"The 'bottleneck' parameter of figure 11.7 must be less than channels ({p.channels}). "
                         f"Got {p.bottleneck} instead.")


_BLOCK_STYLE = "round,pad=0.02,rounding_size=0.1"  # the layer boxes of figs. 11.7 and 11.8


def _block_diagram(ax, input_shape, layers, shapes, params, title):
    n = len(layers)
    ys = np.arange(n + 1)[::-1] * 1.0  # input at the top
    colours = {"batch norm": style.REGION, "ReLU": "#E0E0E0"}
    box = dict(edge="0.2", boxstyle=_BLOCK_STYLE, zorder=2, fontsize=7.5)
    drawing.box(ax, 0, ys[0], 2.1, 0.56, f"input  {_shape(input_shape)}", face=drawing.light(style.DATA, 0.45), **box)
    for i, (layer, shape, n_par) in enumerate(zip(layers, shapes, params)):
        y = ys[i + 1]
        drawing.arrow(ax, (0, ys[i] - 0.3), (0, y + 0.3), lw=0.8, color="0.3")
        if layer == "+ input":
            ax.plot([0], [y], "o", ms=15, mfc="white", mec="black", mew=0.9, zorder=3)
            ax.text(0, y, "+", ha="center", va="center", fontsize=11, zorder=4)
            ax.text(0, y - 0.42, f"output  {_shape(shape)}", ha="center", va="top", fontsize=7.5)
            continue
        face = drawing.light(style.MODEL, 0.55) if "conv" in layer else colours.get(layer, "white")
        drawing.box(ax, 0, y, 2.1, 0.56, layer, face=face, **box)
        ax.text(1.25, y, _shape(shape), ha="left", va="center", fontsize=7, color="0.3")
        if n_par:
            ax.text(-1.25, y, f"{n_par:,}", ha="right", va="center", fontsize=7,
                    color=style.MODEL if "conv" in layer else "0.45")
    # the skip connection: from the input around the branch to the sum
    x_skip = 2.9
    ax.plot([1.05, x_skip, x_skip, 0.3], [ys[0], ys[0], ys[-1], ys[-1]], color=style.TRUTH, lw=1.0)
    ax.text(x_skip + 0.1, (ys[0] + ys[-1]) / 2, "skip", rotation=90, ha="left", va="center", fontsize=7.5)
    ax.set_xlim(-3.0, 3.3)
    ax.set_ylim(ys[-1] - 1.0, ys[0] + 0.7)
    ax.axis("off")
    ax.set_title(title, fontsize=9)


def _shape(shape) -> str:
    return "×".join(str(s) for s in shape)


@resnet_blocks.plot
def _(r):
    m = r.metrics
    fig, axes = style.subplots(1, 2, width=3.6, height=5.4)
    _block_diagram(axes[0], m["input_shape"], m["standard_layers"], m["standard_shapes"], m["standard_layer_params"],
                   f"standard block: {m['standard_params']:,} parameters")
    _block_diagram(axes[1], m["input_shape"], m["bottleneck_layers"], m["bottleneck_shapes"],
                   m["bottleneck_layer_params"],
                   f"bottleneck (B = {m['bottleneck']}): {m['bottleneck_params']:,} parameters")
    style.panel_labels(axes)
    return fig


@resnet_blocks.checks
def _(r):
    m = r.metrics
    c, b = m["channels"], m["bottleneck"]
    return [Check.less(f"the bottleneck block has fewer parameters than the standard one (C = {c}, B = {b})",
                       m["bottleneck_params"], m["standard_params"]),
            Check.equal("standard block: 2·9·C² weights + 2·2·C batch-norm parameters", m["standard_params"],
                        m["standard_closed_form"]),
            Check.equal("bottleneck block: C·B + 9·B² + B·C weights + 2·(C + 2B) batch-norm parameters",
                        m["bottleneck_params"], m["bottleneck_closed_form"]),
            Check.equal("the standard block's output has its input's shape", m["standard_output_shape"],
                        m["input_shape"]),
            Check.equal("the bottleneck block's output has its input's shape", m["bottleneck_output_shape"],
                        m["input_shape"]),
            Check.equal("the bottleneck's 3×3 convolution works on B channels", m["bottleneck_inner_channels"], [b]),
            Check.equal("the bottleneck block sees a 3×3 region (measured receptive field)", m["bottleneck_rf"],
                        [3, 3]),
            Check.equal("the standard block's two 3×3 convolutions see 5×5", m["standard_rf"], [5, 5])]


# --------------------------------------------------------------------------- 11.8
@figure("11.8", title="ResNet-200",
        caption="udl's ResNet-200, built and run. A 7×7 convolution with stride two and 3×3 max pooling bring a "
                "224×224 photograph to 56×56; then four stages of bottleneck blocks (3, 24, 36 and 3 blocks; "
                "bottleneck channels 64, 128, 256 and 512, four times as many out) halve the resolution and "
                "double the channels at each stage (56, 28, 14, 7); average pooling over all positions and a fully "
                "connected layer give 1,000 pre-softmax outputs. 1 + 3·66 + 1 = 200 weight layers (the 1×1 "
                "projections on the skip paths are not counted) and about 64.7 million parameters, counted on "
                "PyTorch's meta device. Below each stage: the mean absolute activation of its output for the "
                "photograph (untrained weights).",
        params={"tiny": dict(blocks=[1, 1, 1, 1], widths=[4, 8, 16, 32], stem_channels=8, image_size=64),
                "full": dict(blocks=[3, 24, 36, 3], widths=[64, 128, 256, 512], stem_channels=64, image_size=224)},
        limits={"blocks": Limit(1, 64, max_len=6), "widths": Limit(1, 512, max_len=6), "stem_channels": (1, 256),
                "image_size": (8, 512)})
def resnet_200(p, run):
    with torch.device("meta"):  # count without allocating 64.7 million parameters
        counted = resnet200()
    cfg200 = counted.config
    cfg = ResNetConfig(stages=tuple(p.blocks), widths=tuple(p.widths), stem_channels=p.stem_channels, n_classes=1000)
    net = ResNet(cfg, generator=run.seed).to(run.device)
    img = _square_photo(p.image_size)
    shapes, maps = [], []

    def hook(_module, _inputs, output):
        shapes.append(list(output.shape[1:]))
        maps.append(output[0].abs().mean(0).float().cpu().numpy())  # (H, W): mean |activation| over channels

    hooks = [m.register_forward_hook(hook) for m in (net.stem[0], net.stem, *net.stages)]
    try:
        with torch.no_grad():
            logits = net.train()(_standardise(img).to(run.device)).float().cpu()  # BN: the image's own statistics
    finally:
        for h in hooks:
            h.remove()
    arrays = {"image": img[0].permute(1, 2, 0).numpy(), "logits": logits[0].numpy()}
    arrays.update({f"map{i}": a for i, a in enumerate(maps[2:])})  # the four stages' outputs
    return Result(
        metrics={"resnet200_parameters": count_parameters(counted), "resnet200_closed_form": cfg200.parameter_count,
                 "resnet200_layers": counted.layer_count, "resnet200_blocks": list(cfg200.stages),
                 "resnet200_widths": list(cfg200.widths), "resnet200_stage_channels": list(cfg200.stage_channels),
                 "is_resnet200": cfg == cfg200, "blocks": list(cfg.stages), "widths": list(cfg.widths),
                 "forward_parameters": count_parameters(net), "forward_closed_form": cfg.parameter_count,
                 "forward_layers": net.layer_count, "image_size": p.image_size, "conv_shape": shapes[0],
                 "pool_shape": shapes[1], "stage_sizes": [s[-1] for s in shapes[2:]],
                 "stage_channels": [s[0] for s in shapes[2:]],
                 "expected_stage_channels": list(cfg.stage_channels), "output_shape": list(logits.shape),
                 "output_finite": bool(torch.isfinite(logits).all()), "output_std": float(logits.std())},
        arrays=arrays,
        notes="" if cfg == cfg200 else
        f"The forward pass runs a small network of the same design (blocks {p.blocks}, widths {p.widths}) on a "
        f"{p.image_size}×{p.image_size} image; ResNet-200 itself is only built on the meta device and counted.")


_MAX_PARAMETERS = 100_000_000  # the network run: ResNet-200 (64.7 million) and a margin, a few hundred MB


def _stage_sizes(size: int, n_stages: int) -> list[int]:
    """The side of each stage's output for a size × size image: the 7×7 stride-2 convolution (padding 3) and the
    3×3 stride-2 max pooling (padding 1), then a stride-2 3×3 convolution (padding 1) opening stages 2, 3..."""
    side = conv_output_length(conv_output_length(size, 7, 2, 3), 3, 2, 1)
    sides = [side]
    for _ in range(n_stages - 1):
        sides.append(conv_output_length(sides[-1], 3, 2, 1))
    return sides


@resnet_200.requires
def _(p):
    if len(p.widths) != len(p.blocks):
        raise ValueError(f"The 'widths' parameter of figure 11.8 must be a list of one width per stage of blocks "
                         f"({len(p.blocks)}). Got {','.join(map(str, p.widths))} instead.")
    count = ResNetConfig(stages=tuple(p.blocks), widths=tuple(p.widths), stem_channels=p.stem_channels,
                         n_classes=1000).parameter_count  # closed form: nothing is built
    if count > _MAX_PARAMETERS:
        raise ValueError(f"The 'blocks' parameter of figure 11.8 must be few enough for a network of at most "
                         f"{_MAX_PARAMETERS:,} parameters with these widths. Got {','.join(map(str, p.blocks))} "
                         f"({count:,} parameters) instead.")
    if _stage_sizes(p.image_size, len(p.blocks))[-1] < 2:  # batch norm needs more than one value per channel
        smallest = 2 ** (len(p.blocks) + 1) + 1
        raise ValueError(f"The 'image_size' parameter of figure 11.8 must be at least {smallest} for "
                         f"{len(p.blocks)} stages (the last stage needs 2×2 pixels). Got {p.image_size} instead.")


@resnet_200.plot
def _(r):
    m = r.metrics
    fig, ax = style.subplots(1, 1, width=11.0, height=3.3)
    size = m["image_size"]
    ax.imshow(r.arrays["image"], extent=(0, 2.2, 0.2, 2.4))
    ax.text(1.1, 0.0, f"{size}×{size}×3", ha="center", va="top", fontsize=7.5)
    x = 2.6
    conv, pool = m["conv_shape"], m["pool_shape"]
    items = [("7×7 conv\n/2", f"{conv[0]} ch, {conv[1]}×{conv[2]}", style.MODEL),
             ("max pool\n/2", f"{pool[0]} ch, {pool[1]}×{pool[2]}", style.REGION)]
    for i, (n, w) in enumerate(zip(m["blocks"], m["widths"])):
        c, s = m["stage_channels"][i], m["stage_sizes"][i]
        items.append((f"bottleneck ({w})\n× {n}", f"{c} ch, {s}×{s}", style.MODEL))
    items += [("average\npool", f"{m['stage_channels'][-1]}", style.REGION),
              ("fully\nconnected", f"{m['output_shape'][-1]} outputs", style.MODEL)]
    for j, (label, under, colour) in enumerate(items):
        width = 1.45 if "bottleneck" in label else 0.95
        drawing.box(ax, x + width / 2, 1.4, width, 1.0, label, face=drawing.light(colour, 0.45), edge="0.2",
                    boxstyle=_BLOCK_STYLE, fontsize=7.5)
        ax.text(x + width / 2, 0.75, under, ha="center", va="top", fontsize=7)
        if j == 1:
            ax.text(x + width / 2, -0.45, "mean |activation|\nof each stage →", ha="center", va="center", fontsize=7,
                    color="0.3")
        stage = j - 2
        if 0 <= stage < len(m["blocks"]):
            a = r.arrays[f"map{stage}"]
            ax.imshow(a, extent=(x + 0.2, x + width - 0.2, -0.95, 0.1 - 0.0), cmap="gray", interpolation="nearest")
        ax.annotate("", (x, 1.4), (x - 0.25, 1.4), arrowprops=dict(arrowstyle="-|>", lw=0.8, color="0.3"))
        x += width + 0.25
    drawing.frame(ax, (-0.1, x), (-1.05, 2.5))
    name = "ResNet-200" if m["is_resnet200"] else "a small network of ResNet-200's design"
    ax.set_title(f"{name}: {m['forward_layers']} weight layers, {m['forward_parameters']:,} parameters "
                 f"(ResNet-200: {m['resnet200_layers']} layers, {m['resnet200_parameters']:,})", fontsize=9)
    return fig


@resnet_200.checks
def _(r):
    m = r.metrics
    size = m["image_size"]
    expected_sizes = _stage_sizes(size, len(m["blocks"]))
    return [Check.equal("ResNet-200 has 200 weight layers (1 + 3·66 + 1)", m["resnet200_layers"], 200),
            Check.close("ResNet-200 has about 64.7 million parameters (within 1%)", m["resnet200_parameters"], 64.7e6,
                        0.01, rel=True),
            Check.equal("the counted parameters equal the closed form", m["resnet200_parameters"],
                        m["resnet200_closed_form"]),
            Check.equal("ResNet-200's stages hold 3, 24, 36, 3 bottleneck blocks", m["resnet200_blocks"],
                        [3, 24, 36, 3]),
            Check.equal("the network run has the parameters of its closed form", m["forward_parameters"],
                        m["forward_closed_form"]),
            Check.equal("one image gives 1,000 outputs", m["output_shape"], [1, 1000]),
            Check.equal(f"the stages work at {', '.join(map(str, expected_sizes))} pixels for a {size}×{size} image",
                        m["stage_sizes"], expected_sizes),
            Check.equal("each stage outputs 4 × its bottleneck channels", m["stage_channels"],
                        m["expected_stage_channels"]),
            Check.holds("the outputs are finite", m["output_finite"], m["output_finite"])]


# --------------------------------------------------------------------------- 11.9
@figure("11.9", title="DenseNet: concatenating earlier representations",
        caption="A dense block run on a real photograph (three channels). Each layer (batch norm, ReLU, 3×3 "
                "convolution) makes k = 32 new channels from everything before it and appends them to the stack: "
                "3 → 35 → 67 → 99 → ... channels, measured. The earlier channels, the image included, pass through "
                "unchanged. a) The image and one new channel of each layer. b) The stack after each layer, coloured "
                "by the layer that made each channel; a transition layer (1×1 convolution and 2×2 average "
                "pooling) then halves the channels and the resolution.",
        params={"tiny": dict(downscale=8, n_layers=4, growth_rate=32),
                "full": dict(downscale=2, n_layers=5, growth_rate=32)},
        limits={"downscale": (2, 100), "n_layers": (1, 8), "growth_rate": (1, 64)})  # every stack kept: < 1 GB
def densenet_block(p, run):
    img = torch.from_numpy(load_photo("china", downscale=p.downscale)).permute(2, 0, 1)[None]  # (1, 3, H, W)
    x = _standardise(img)
    block = DenseBlock(3, p.n_layers, p.growth_rate, generator=run.generator(1))
    transition = Transition(block.out_channels, block.out_channels // 2, generator=run.generator(2))
    with torch.no_grad():
        stacks = block.train().stacks(x)  # [h_0, ..., h_L]
        reduced = transition.train()(stacks[-1])
    changed = max((later[:, :earlier.shape[1]] - earlier).abs().max().item()
                  for j, earlier in enumerate(stacks) for later in stacks[j + 1:])
    news = [h[0, h.shape[1] - p.growth_rate] for h in stacks[1:]]  # the first new channel of each layer: (H, W)
    arrays = {"image": img[0].permute(1, 2, 0).numpy()}
    arrays.update({f"new{i + 1}": a.numpy() for i, a in enumerate(news)})
    return Result(metrics={"growth_rate": p.growth_rate, "n_layers": p.n_layers,
                           "channels": [h.shape[1] for h in stacks], "image_shape": list(x.shape[1:]),
                           "spatial_kept": all(h.shape[2:] == x.shape[2:] for h in stacks),
                           "image_kept_max_diff": (stacks[-1][:, :3] - x).abs().max().item(),
                           "earlier_kept_max_diff": changed,
                           "new_channel_rms": [h[:, -p.growth_rate:].square().mean().sqrt().item() for h in stacks[1:]],
                           "transition_shape": list(reduced.shape[1:])},
                  arrays=arrays)


@densenet_block.plot
def _(r):
    m = r.metrics
    n = m["n_layers"]

    with plt.rc_context(style.RC):
        fig = plt.figure(figsize=(2.0 * (n + 1), 5.2), layout="constrained")
        grid = fig.add_gridspec(2, n + 1, height_ratios=[1, 1.6])
        top = [fig.add_subplot(grid[0, i]) for i in range(n + 1)]
        bars = fig.add_subplot(grid[1, :])
    shades = [drawing.light(style.MODEL, a) for a in np.linspace(0.35, 1.0, n)]
    top[0].imshow(np.clip(r.arrays["image"], 0, 1))
    top[0].set_title("image (3 channels)", fontsize=8)
    for i in range(1, n + 1):
        top[i].imshow(r.arrays[f"new{i}"], cmap="gray")
        top[i].set_title(f"layer {i}: a new channel", fontsize=8, color="0.2")
        for side in top[i].spines.values():
            side.set_visible(True)
            side.set_edgecolor(shades[i - 1])
            side.set_linewidth(3)
    for thumb in top:
        thumb.set_xticks([])
        thumb.set_yticks([])
    channels = m["channels"]
    k = m["growth_rate"]
    for j, total in enumerate(channels):
        bars.bar(j, 3, color=style.DATA, width=0.6, edgecolor="white", lw=0.5)
        for layer in range(1, j + 1):
            bars.bar(j, k, bottom=3 + (layer - 1) * k, color=shades[layer - 1], width=0.6, edgecolor="white", lw=0.5)
        bars.text(j, total + 3, str(total), ha="center", va="bottom", fontsize=9)
    t = m["transition_shape"]
    bars.bar(len(channels), t[0], color=style.REGION, width=0.6)
    bars.text(len(channels), t[0] + 3, f"{t[0]}\n({t[1]}×{t[2]})", ha="center", va="bottom", fontsize=8)
    h, w = m["image_shape"][1:]
    bars.set_xticks(range(len(channels) + 1),
                  ["input"] + [f"after layer {j}" for j in range(1, len(channels))] + ["transition"])
    bars.set_ylabel(f"channels (all {h}×{w})")
    bars.set_ylim(0, channels[-1] * 1.18)
    bars.legend(handles=[Patch(color=style.DATA, label="the image's 3 channels"),
                       Patch(color=shades[-1], label=f"k = {k} channels made by each layer"),
                       Patch(color=style.REGION, label="after the transition layer")], loc="upper left", fontsize=7.5)
    top[0].set_title("a)", loc="left", fontweight="bold")
    bars.set_title("b)", loc="left", fontweight="bold")
    return fig


@densenet_block.checks
def _(r):
    m = r.metrics
    k, n = m["growth_rate"], m["n_layers"]
    expected = [3 + layer * k for layer in range(n + 1)]
    return [Check.equal(f"the stack grows {' → '.join(map(str, expected))} channels", m["channels"], expected),
            Check.close("the input image is passed on unchanged (max |difference|)", m["image_kept_max_diff"], 0.0,
                        0.0),
            Check.close("every earlier channel is passed on unchanged (max |difference|)", m["earlier_kept_max_diff"],
                        0.0, 0.0),
            Check.holds("the resolution is kept inside the block", m["spatial_kept"], m["spatial_kept"]),
            Check.greater("every layer adds non-trivial features (smallest RMS of a new group)",
                          min(m["new_channel_rms"]), 0.01),
            Check.equal("the transition halves the channels and the resolution", m["transition_shape"],
                        [expected[-1] // 2, m["image_shape"][1] // 2, m["image_shape"][2] // 2])]
