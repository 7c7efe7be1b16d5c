"""A YOLO-style object detector (UDL §10.5.2, fig. 10.18; Redmon et al., 2016).

YOLO ("you only look once") detects every object in one forward pass. A
convolutional network maps the image to an S x S grid of cells; each cell predicts

- B boxes, each ``(x, y, √w, √h, confidence)``: the box centre as an offset in
  [0, 1] within the cell, the square roots of its width and height as fractions of
  the image, and the confidence that the box holds an object (ideally its IoU with
  the object);
- C class probabilities Pr(class | object), one set per cell, shared by its B boxes.

So the output is an ``S x S x (5B + C)`` tensor (7 x 7 x 30 in the book's figure:
S = 7, B = 2, C = 20). The cell that holds an object's centre is responsible for it,
and of its B boxes the one that overlaps the object most (highest IoU) is trained
to fit it. At test time each box scores ``confidence x max_c Pr(c | object)``;
boxes above a threshold are kept, and non-maximum suppression removes the
lower-scoring duplicates of each object. Detection quality is the mean average
precision (mAP) at IoU 0.5, as in PASCAL VOC.

Everything here works in pixels: boxes are ``(x0, y0, x1, y1)`` with the
conventions of :mod:`udl.data.scenes`. This file holds, small parts first: the
configuration, the network, the target encoding, the YOLO loss and :func:`decode`.
Box overlap (IoU), non-maximum suppression and the evaluation (mAP) work for any
detector and live in :mod:`udl.analysis.detection`.

Differences from YOLO v1: the network is a small convolutional backbone whose
output cell (i, j) comes from a 1x1 convolution over the backbone's S x S feature
map (v1 ends in fully connected layers); batch normalisation is optional (v2 added
it); class scores go through a softmax before the squared-error class loss.

Example::

    scenes = make_scenes(512, size=56, seed=0)
    model = YOLO("default", generator=0)           # 56-pixel images, 7 x 7 grid
    targets = encode_targets(scenes.boxes, scenes.labels, model.config)
    loss = YOLOLoss(model.config)
    fit(model, (scenes.images, targets), loss, lambda p: torch.optim.Adam(p, 1e-3),
        steps=500, batch_size=32)
    detections = model.detect(scenes.images[:4])   # list of Detections per image
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from udl.analysis.detection import Detections, non_max_suppression, paired_iou
from udl.data.scenes import check_boxes
from udl.nn.init import initialised_from
from udl.validate import (as_generator, check_float, check_instance, check_int, check_sequence, check_tensor,
                          is_int)


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class YOLOConfig:
    """The detector's sizes and loss weights.

    The backbone is a stack of 3x3 convolutions (padding 1), each followed by batch
    normalisation (optional) and a leaky ReLU (slope 0.1, as in YOLO); the first
    log2(image_size / grid) of them are each followed by 2x2 max pooling, so the
    feature map ends S x S. A 1x1 convolution then gives every cell its 5B + C outputs.

    Presets: ``YOLOConfig.preset("tiny")`` (32-pixel images, 4 x 4 grid, three
    classes: for tests) and ``"default"`` (56-pixel images, 7 x 7 grid, five classes:
    figure 10.18).
    """

    image_size: int = 56  # side of the square input image in pixels (the book's 448 / 8)
    grid: int = 7  # S: the output grid is S x S cells (7 x 7 as in the book)
    n_boxes: int = 2  # B: boxes predicted per cell
    n_classes: int = 5  # C: object classes
    widths: tuple[int, ...] = (16, 32, 64, 64)  # channels of the 3x3 convolutions
    batch_norm: bool = True  # batch normalisation after each convolution
    lambda_coord: float = 5.0  # λ_coord: weight of the box coordinates in the loss
    lambda_noobj: float = 0.5  # λ_noobj: weight of the confidence of boxes without objects

    def __post_init__(self):
        owner = "YOLOConfig"
        check_int(self.image_size, "image_size", owner)
        check_int(self.grid, "grid", owner)
        check_int(self.n_boxes, "n_boxes", owner)
        check_int(self.n_classes, "n_classes", owner)
        if not isinstance(self.widths, (tuple, list)) or not self.widths or \
                any(not is_int(w) or w < 1 for w in self.widths):
            raise ValueError(f"The 'widths' parameter of {owner} must be a non-empty tuple of positive ints. "
                             f"Got {self.widths!r} instead.")
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        ratio = self.image_size / self.grid
        if self.image_size % self.grid or ratio < 1 or ratio != 2 ** round(math.log2(ratio)):
            raise ValueError(f"The 'grid' parameter of {owner} must divide image_size = {self.image_size} by a "
                             f"power of two. Got {self.grid!r} instead.")
        if self.n_pools > len(self.widths):
            raise ValueError(f"The 'widths' parameter of {owner} must have at least {self.n_pools} entries "
                             f"(one per 2x2 pooling from {self.image_size} to {self.grid}). "
                             f"Got {self.widths!r} instead.")
        if not isinstance(self.batch_norm, bool):
            raise TypeError(f"The 'batch_norm' parameter of {owner} must be a bool. Got {self.batch_norm!r} instead.")
        check_float(self.lambda_coord, "lambda_coord", owner, low=0.0)
        check_float(self.lambda_noobj, "lambda_noobj", owner, low=0.0)

    @property
    def n_pools(self) -> int:
        """The number of 2x2 poolings from the image to the S x S grid."""
        return round(math.log2(self.image_size // self.grid))

    @property
    def cell_size(self) -> float:
        """The side of one grid cell in pixels."""
        return self.image_size / self.grid

    @property
    def n_outputs(self) -> int:
        """5B + C outputs per cell."""
        return 5 * self.n_boxes + self.n_classes

    @classmethod
    def preset(cls, name: str) -> YOLOConfig:
        """A named configuration: ``"tiny"`` (tests) or ``"default"`` (figure 10.18)."""
        if name not in _PRESETS:
            raise ValueError(f"The 'name' parameter of YOLOConfig.preset must be one of "
                             f"{', '.join(map(repr, _PRESETS))}. Got {name!r} instead.")
        return cls(**_PRESETS[name])

    @classmethod
    def tiny(cls, **changes) -> YOLOConfig:
        """The ``"tiny"`` preset (32-pixel images, 4 x 4 grid, 3 classes: for tests), with ``changes``."""
        return cls(**{**_PRESETS["tiny"], **changes})


_PRESETS = {"tiny": dict(image_size=32, grid=4, n_classes=3, widths=(8, 16, 16)),  # tests: milliseconds a step
            "default": dict()}  # figure 10.18


# --------------------------------------------------------------------------- the network
class YOLO(nn.Module):
    """A YOLO detector: a convolutional backbone to an S x S grid of (5B + C) outputs per cell.

    ``forward`` returns the raw outputs (logits); for box b of cell (i, j) the
    entries ``5b .. 5b+4`` are ``(x, y, √w, √h, confidence)`` before a sigmoid, and
    the last C entries are the class scores before a softmax. :func:`decode` turns
    them into boxes; :meth:`detect` also applies non-maximum suppression.

    Args:
        config: a :class:`YOLOConfig` or a preset name (``"tiny"``, ``"default"``).
            Default: "default".
        generator: the random numbers of the initial weights (torch's default
            initialisation, U(-1/√fan_in, 1/√fan_in)): a ``torch.Generator`` or an int
            seed. Default: None, torch's global generator.

    Shape:
        ``(N, 3, image_size, image_size) -> (N, S, S, 5B + C)``.

    Example:
        >>> model = YOLO("tiny", generator=0)
        >>> model(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 4, 4, 13])
    """

    def __init__(self, config: YOLOConfig | str = "default", *, generator: torch.Generator | int | None = None):
        super().__init__()
        if isinstance(config, str):
            if config not in _PRESETS:
                raise ValueError(f"The 'config' parameter of YOLO must be a YOLOConfig or one of "
                                 f"{', '.join(map(repr, _PRESETS))}. Got {config!r} instead.")
            config = YOLOConfig.preset(config)
        if not isinstance(config, YOLOConfig):
            raise TypeError(f"The 'config' parameter of YOLO must be a YOLOConfig or a preset name. "
                            f"Got {config!r} instead.")
        generator = as_generator(generator, "YOLO")
        self.config = config
        with initialised_from(self, generator):
            layers: list[nn.Module] = []
            channels = 3
            for k, width in enumerate(config.widths):
                layers.append(nn.Conv2d(channels, width, 3, padding=1, bias=not config.batch_norm))
                if config.batch_norm:
                    layers.append(nn.BatchNorm2d(width))
                layers.append(nn.LeakyReLU(0.1))
                if k < config.n_pools:
                    layers.append(nn.MaxPool2d(2))
                channels = width
            self.backbone = nn.Sequential(*layers)
            self.head = nn.Conv2d(channels, config.n_outputs, 1)  # every cell's 5B + C outputs

    @property
    def depth(self) -> int:
        """Hidden layers: the weight layers (convolutions) less the output layer."""
        return len(self.config.widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw outputs per cell; ``(N, 3, H, H) -> (N, S, S, 5B + C)``."""
        size = self.config.image_size
        check_tensor(x, "x", "YOLO.forward", shape=("N", 3, size, size))
        return self.head(self.backbone(x)).permute(0, 2, 3, 1)  # (N, 5B+C, S, S) -> (N, S, S, 5B+C)

    @torch.no_grad()
    def detect(self, images: torch.Tensor, conf_threshold: float = 0.05, iou_threshold: float = 0.5,
               batch_size: int = 256) -> list[Detections]:
        """Detections per image: forward pass (eval mode), :func:`decode`, per-class NMS."""
        check_float(conf_threshold, "conf_threshold", "YOLO.detect", low=0.0, high=1.0)
        check_float(iou_threshold, "iou_threshold", "YOLO.detect", low=0.0, high=1.0)
        check_int(batch_size, "batch_size", "YOLO.detect")
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        outputs = torch.cat([self(images[i:i + batch_size].to(device)).float().cpu()
                             for i in range(0, len(images), batch_size)])
        self.train(was_training)
        results = []
        for det in decode(outputs, self.config, conf_threshold):
            keep = non_max_suppression(det.boxes, det.scores, iou_threshold, det.labels)
            results.append(Detections(det.boxes[keep], det.scores[keep], det.labels[keep]))
        return results


# --------------------------------------------------------------------------- targets, loss, decoding
class Prediction(NamedTuple):
    """The outputs of every cell, activated: centres, sizes, confidences and class probabilities."""

    xy: torch.Tensor  # (N, S, S, B, 2) centre offsets in the cell, in (0, 1)
    sqrt_wh: torch.Tensor  # (N, S, S, B, 2) √w, √h as fractions of the image, in (0, 1)
    confidence: torch.Tensor  # (N, S, S, B) in (0, 1)
    class_prob: torch.Tensor  # (N, S, S, C) Pr(class | object), summing to 1 per cell


def split_output(output: torch.Tensor, config: YOLOConfig) -> Prediction:
    """Apply the sigmoids and the softmax to the raw ``(N, S, S, 5B + C)`` outputs."""
    _check_output(output, config, "split_output")
    n, s, b = output.shape[0], config.grid, config.n_boxes
    boxes = torch.sigmoid(output[..., :5 * b].float()).reshape(n, s, s, b, 5)  # (N, S, S, 5B) -> (N, S, S, B, 5)
    class_prob = torch.softmax(output[..., 5 * b:].float(), dim=-1)  # (N, S, S, C)
    return Prediction(boxes[..., 0:2], boxes[..., 2:4], boxes[..., 4], class_prob)


def _check_output(output, config, owner):
    check_instance(config, "config", owner, YOLOConfig)
    check_tensor(output, "output", owner, shape=("N", config.grid, config.grid, config.n_outputs))


def _corners(xy: torch.Tensor, wh: torch.Tensor, grid: int) -> torch.Tensor:
    """Cell-relative centres and image-relative sizes -> image-relative corners (..., 4)."""
    s = xy.shape[1]
    rows = torch.arange(s, device=xy.device, dtype=xy.dtype).view(1, s, 1, 1)
    cols = torch.arange(s, device=xy.device, dtype=xy.dtype).view(1, 1, s, 1)
    cx = (cols + xy[..., 0]) / grid  # (N, S, S, B): cell column j plus the offset, over S
    cy = (rows + xy[..., 1]) / grid
    return torch.stack([cx - wh[..., 0] / 2, cy - wh[..., 1] / 2, cx + wh[..., 0] / 2, cy + wh[..., 1] / 2], -1)


def encode_targets(boxes: Sequence[torch.Tensor], labels: Sequence[torch.Tensor], config: YOLOConfig) -> torch.Tensor:
    """The training target of every cell from the ground truth of every image.

    The object whose box centre falls in cell (i, j) makes that cell responsible for
    it: the target holds a 1 (an object is present, 1^obj_i), the centre's offset
    within the cell (x, y) in [0, 1), the box's width and height as fractions of the
    image, and the one-hot class. A cell can hold one object only (as in YOLO v1): of
    two centres in one cell the larger box wins.

    Args:
        boxes: per image, ``(K, 4)`` boxes in pixels inside the image.
        labels: per image, ``(K,)`` class indices below ``config.n_classes``.
        config: the detector's configuration.

    Shape:
        ``-> (N, S, S, 5 + C)``: ``[obj, x, y, w, h, one-hot C]`` per cell.
    """
    owner = "encode_targets"
    check_instance(config, "config", owner, YOLOConfig)
    check_sequence(boxes, "boxes", owner, of="tensors, one per image")
    check_sequence(labels, "labels", owner, of="tensors, one per image")
    if len(boxes) != len(labels):
        raise ValueError(f"The 'labels' parameter of {owner} must have one entry per image of boxes ({len(boxes)}). "
                         f"Got {len(labels)} instead.")
    s, size = config.grid, config.image_size
    target = torch.zeros(len(boxes), s, s, 5 + config.n_classes)
    for n, (b, c) in enumerate(zip(boxes, labels)):
        b = check_boxes(b, "boxes", owner, image_size=size)
        c = check_tensor(c, "labels", owner, shape=(len(b),), dtype="int")
        if ((c < 0) | (c >= config.n_classes)).any():
            raise ValueError(f"The 'labels' parameter of {owner} must hold class indices in [0, n_classes = "
                             f"{config.n_classes}). Got {c.tolist()} instead.")
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        for k in torch.argsort(area).tolist():  # smallest first: a larger box in the same cell overwrites it
            x0, y0, x1, y1 = (b[k] / size).tolist()  # image-relative
            cx, cy = (x0 + x1) / 2 * s, (y0 + y1) / 2 * s  # in cell units
            j, i = min(int(cx), s - 1), min(int(cy), s - 1)
            target[n, i, j] = 0
            target[n, i, j, :5] = torch.tensor([1.0, cx - j, cy - i, x1 - x0, y1 - y0])
            target[n, i, j, 5 + int(c[k])] = 1.0
    return target


class YOLOLoss(nn.Module):
    """The YOLO v1 loss (Redmon et al., 2016, eq. 3), summed over cells, averaged over images.

    With 1^obj_i = 1 when an object's centre lies in cell i, and 1^obj_ij = 1 for the
    one box j of that cell whose prediction has the highest IoU with the object (the
    "responsible" box), 1^noobj_ij = 1 - 1^obj_ij::

        L = λ_coord Σ_ij 1^obj_ij [(x_i - x̂_i)² + (y_i - ŷ_i)²]
          + λ_coord Σ_ij 1^obj_ij [(√w_i - √ŵ_i)² + (√h_i - √ĥ_i)²]
          +         Σ_ij 1^obj_ij (C_ij - IoU_ij)²
          + λ_noobj Σ_ij 1^noobj_ij C_ij²
          +         Σ_i 1^obj_i Σ_c (p_i(c) - p̂_i(c))²

    Square roots of the sizes make an error of a few pixels cost more on a small box
    than on a large one; λ_coord = 5 and λ_noobj = 0.5 balance the many empty cells.
    The confidence target is the IoU of the responsible box with its object (held
    fixed, not differentiated), so the confidence estimates the overlap.

    Args:
        config: the detector's configuration (S, B, C, λ_coord, λ_noobj).

    Shape:
        output ``(N, S, S, 5B + C)`` raw; target ``(N, S, S, 5 + C)`` from
        :func:`encode_targets` -> scalar.
    """

    def __init__(self, config: YOLOConfig):
        super().__init__()
        self.config = check_instance(config, "config", "YOLOLoss", YOLOConfig)

    def parts(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """The five terms of the loss, each summed over cells and averaged over images."""
        cfg = self.config
        _check_output(output, cfg, "YOLOLoss")
        check_tensor(target, "target", "YOLOLoss", shape=(*output.shape[:3], 5 + cfg.n_classes))
        pred = split_output(output, cfg)
        target = target.float()
        obj = target[..., 0]  # (N, S, S): 1^obj_i
        true_xy, true_wh = target[..., 1:3], target[..., 3:5]  # (N, S, S, 2) each

        # the responsible box of each cell: the highest IoU with the cell's object
        with torch.no_grad():
            pred_box = _corners(pred.xy, pred.sqrt_wh ** 2, cfg.grid)  # (N, S, S, B, 4)
            true_box = _corners(true_xy[..., None, :], true_wh[..., None, :], cfg.grid)  # (N, S, S, 1, 4)
            iou = paired_iou(pred_box, true_box, eps=1e-9)  # (N, S, S, B)
            best = F.one_hot(iou.argmax(-1), cfg.n_boxes).float()  # (N, S, S, B)
        resp = best * obj[..., None]  # 1^obj_ij
        noresp = 1.0 - resp  # 1^noobj_ij

        n = output.shape[0]
        xy_err = ((pred.xy - true_xy[..., None, :]) ** 2).sum(-1)  # (N, S, S, B)
        wh_err = ((pred.sqrt_wh - true_wh[..., None, :].sqrt()) ** 2).sum(-1)
        return {
            "xy": cfg.lambda_coord * (resp * xy_err).sum() / n,
            "wh": cfg.lambda_coord * (resp * wh_err).sum() / n,
            "obj": (resp * (pred.confidence - iou) ** 2).sum() / n,
            "noobj": cfg.lambda_noobj * (noresp * pred.confidence ** 2).sum() / n,
            "class": (obj[..., None] * (pred.class_prob - target[..., 5:]) ** 2).sum() / n,
        }

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum(self.parts(output, target).values())


def decode(output: torch.Tensor, config: YOLOConfig, conf_threshold: float = 0.05) -> list[Detections]:
    """Turn raw outputs into scored boxes in pixels, per image (before non-maximum suppression).

    Box b of cell (i, j) has centre ``((j + x) / S, (i + y) / S)`` and size
    ``(√w², √h²)`` (image fractions, times ``image_size`` for pixels), clipped to the
    image; its class is the cell's most probable one and its score the class-specific
    confidence ``C x max_c Pr(c | object)``. Boxes scoring below ``conf_threshold``
    are dropped.

    Args:
        output: raw network outputs ``(N, S, S, 5B + C)``.
        config: the detector's configuration.
        conf_threshold: the least score kept, in [0, 1]. Default: 0.05.

    Returns:
        N :class:`Detections` (boxes ``(K, 4)`` pixels, scores ``(K,)``, labels ``(K,)``),
        boxes in the order cell row, cell column, box.
    """
    _check_output(output, config, "decode")
    check_float(conf_threshold, "conf_threshold", "decode", low=0.0, high=1.0)
    pred = split_output(output.detach(), config)
    size, b = config.image_size, config.n_boxes
    wh = (pred.sqrt_wh ** 2).clamp(min=1e-3 / size)  # at least a thousandth of a pixel
    boxes = (_corners(pred.xy, wh, config.grid) * size).clamp(0, size)  # (N, S, S, B, 4) pixels
    best_prob, best_class = pred.class_prob.max(-1)  # (N, S, S)
    scores = pred.confidence * best_prob[..., None]  # (N, S, S, B)
    labels = best_class[..., None].expand_as(scores)
    results = []
    for n in range(output.shape[0]):
        keep = scores[n] >= conf_threshold  # (S, S, B)
        results.append(Detections(boxes[n][keep], scores[n][keep], labels[n][keep]))
    return results


__all__ = ["Prediction", "YOLO", "YOLOConfig", "YOLOLoss", "decode", "encode_targets", "split_output"]
