"""ResNet weights in and out: udl's post-activation ResNet <-> ``transformers``' ResNet.

``transformers``' ``ResNetModel`` / ``ResNetForImageClassification`` is the original
post-activation ResNet (He et al., 2015) with the stride on the 3×3 convolution when
``downsample_in_bottleneck=False`` (torchvision's "v1.5"): udl's
``ResNet(ResNetConfig(..., preact=False))`` computes the same function, layer for layer.
Only the names differ::

    transformers (resnet.)                              udl
    embedder.embedder.convolution                       stem.0          7×7 conv, stride 2
    embedder.embedder.normalization                     stem.1          BN
    encoder.stages.s.layers.j.layer.k.convolution       stages.s.j.branch.3k       conv k = 0, 1, 2
    encoder.stages.s.layers.j.layer.k.normalization     stages.s.j.branch.3k+1     BN after it
    encoder.stages.s.layers.j.shortcut.convolution      stages.s.j.shortcut.0      the 1×1 projection
    encoder.stages.s.layers.j.shortcut.normalization    stages.s.j.shortcut.1      its BN
    classifier.1                                        head.2          fully connected

(``ResNetModel``'s names have no ``resnet.`` prefix and no classifier.) Batch norms carry
their running statistics (``running_mean``, ``running_var``, ``num_batches_tracked``).

:func:`to_transformers_state_dict` and :func:`from_transformers_state_dict` map the tensors;
:func:`save_resnet` and :func:`load_resnet` write and read a checkpoint folder
(``config.json`` + ``model.safetensors``) that ``ResNetForImageClassification.save_pretrained``
writes and ``from_pretrained`` reads. udl's default, pre-activation ResNet (He et al.,
2016b) has no counterpart in ``transformers`` and is refused.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from udl.interop.checkpoint import read_checkpoint, write_checkpoint
from udl.models.resnet import ResNet, ResNetConfig
from udl.validate import check_bool, check_instance

__all__ = ["hf_resnet_config", "resnet_config", "to_transformers_state_dict", "from_transformers_state_dict",
           "save_resnet", "load_resnet"]

_LAYER_TYPES = {"bottleneck": "bottleneck", "standard": "basic"}  # udl's block -> transformers' layer_type
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_PREFIX = "resnet."  # ResNetForImageClassification's base model


def _refuse(owner: str, name: str, wanted: str, got) -> None:
    raise ValueError(f"The {name!r} parameter of {owner} must be {wanted}. Got {got} instead.")


def _check_expressible(config: ResNetConfig, owner: str, name: str) -> None:
    if config.preact:
        _refuse(owner, name, "a post-activation ResNet (ResNetConfig(preact=False)): transformers' ResNet is "
                "He et al.'s 2015 network", "a pre-activation ResNet")
    if config.block == "bottleneck" and config.expansion != 4:
        _refuse(owner, name, "a ResNet whose bottleneck expansion is 4 (transformers' reduction)",
                f"expansion={config.expansion}")


def hf_resnet_config(config: ResNetConfig) -> dict:
    """The ``config.json`` of ``transformers``' ``ResNetForImageClassification`` for a post-activation udl config.

    Args:
        config: a :class:`~udl.models.resnet.ResNetConfig` with ``preact=False`` (and, for
            bottleneck blocks, ``expansion=4``).

    Returns:
        a dict: ``model_type`` "resnet", ``layer_type``, ``depths``, ``hidden_sizes`` (the
        stages' output channels), ``embedding_size`` (the stem's channels), ``num_channels``,
        ``id2label`` / ``label2id`` with ``n_classes`` entries (as ``transformers`` writes them).

    Example::

        >>> hf = hf_resnet_config(ResNetConfig.preset("resnet50", preact=False))
        >>> hf["depths"], hf["hidden_sizes"], hf["embedding_size"]
        ([3, 4, 6, 3], [256, 512, 1024, 2048], 64)
    """
    owner = "hf_resnet_config"
    check_instance(config, "config", owner, ResNetConfig)
    _check_expressible(config, owner, "config")
    return {"architectures": ["ResNetForImageClassification"], "model_type": "resnet",
            "layer_type": _LAYER_TYPES[config.block], "depths": list(config.stages),
            "hidden_sizes": list(config.stage_channels), "embedding_size": config.stem_channels,
            "num_channels": config.in_channels, "hidden_act": "relu", "downsample_in_first_stage": False,
            "downsample_in_bottleneck": False,
            "id2label": {str(i): f"LABEL_{i}" for i in range(config.n_classes)},
            "label2id": {f"LABEL_{i}": i for i in range(config.n_classes)}}


def resnet_config(hf_config: dict) -> ResNetConfig:
    """The post-activation :class:`~udl.models.resnet.ResNetConfig` of a ``transformers`` ResNet ``config.json``.

    Refused with one line: a ``model_type`` other than "resnet", an activation other than
    ReLU, the stride in the first 1×1 convolution (``downsample_in_bottleneck``, the
    original v1 bottleneck) or a strided first stage (``downsample_in_first_stage``).

    Example::

        >>> cfg = resnet_config({"model_type": "resnet", "layer_type": "basic", "depths": [2, 2, 2, 2],
        ...                      "hidden_sizes": [64, 128, 256, 512], "embedding_size": 64})
        >>> cfg.block, cfg.stages, cfg.preact, cfg.parameter_count
        ('standard', (2, 2, 2, 2), False, 11177538)
    """
    return _resnet_config(hf_config, "resnet_config", "hf_config")


def _resnet_config(hf_config, owner: str, name: str) -> ResNetConfig:
    check_instance(hf_config, name, owner, dict)
    get = hf_config.get
    if get("model_type") != "resnet":
        _refuse(owner, name, "a transformers ResNet config (model_type 'resnet')", f"model_type {get('model_type')!r}")
    if get("hidden_act", "relu") != "relu":
        _refuse(owner, name, "a ResNet with ReLU activations", f"hidden_act {get('hidden_act')!r}")
    for flag in ("downsample_in_first_stage", "downsample_in_bottleneck"):
        if get(flag, False):
            _refuse(owner, name, f"a ResNet with {flag} false (udl strides the 3×3 convolution of the first "
                    "block of stages 2, 3, ...)", f"{flag} true")
    layer_type = get("layer_type", "bottleneck")
    block = {v: k for k, v in _LAYER_TYPES.items()}.get(layer_type)
    if block is None:
        _refuse(owner, name, "a ResNet with layer_type 'bottleneck' or 'basic'", f"{layer_type!r}")
    sizes = list(get("hidden_sizes", [256, 512, 1024, 2048]))
    if block == "bottleneck" and any(s % 4 for s in sizes):
        _refuse(owner, name, "a bottleneck ResNet whose hidden_sizes are multiples of 4", sizes)
    n_classes = get("num_labels") or len(get("id2label") or {}) or 2  # transformers' default: 2 labels
    return ResNetConfig(block=block, stages=tuple(get("depths", [3, 4, 6, 3])),
                        widths=tuple(s // 4 for s in sizes) if block == "bottleneck" else tuple(sizes),
                        stem_channels=get("embedding_size", 64), in_channels=get("num_channels", 3),
                        n_classes=n_classes, preact=False)


def _name_pairs(config: ResNetConfig) -> list[tuple[str, str, tuple[str, ...]]]:
    """``(udl module, transformers module, tensor names)`` for every layer, in the base model's names."""
    pairs = [("stem.0", "embedder.embedder.convolution", ("weight",)),
             ("stem.1", "embedder.embedder.normalization", _BN)]
    c = config.stem_channels
    for s, (n, c_out) in enumerate(zip(config.stages, config.stage_channels)):
        for j in range(n):
            udl, hf = f"stages.{s}.{j}", f"encoder.stages.{s}.layers.{j}"
            for k in range(config.layers_per_block):  # conv → BN → ReLU: three modules per unit
                pairs += [(f"{udl}.branch.{3 * k}", f"{hf}.layer.{k}.convolution", ("weight",)),
                          (f"{udl}.branch.{3 * k + 1}", f"{hf}.layer.{k}.normalization", _BN)]
            if (s > 0 and j == 0) or c != c_out:  # the projection shortcut
                pairs += [(f"{udl}.shortcut.0", f"{hf}.shortcut.convolution", ("weight",)),
                          (f"{udl}.shortcut.1", f"{hf}.shortcut.normalization", _BN)]
            c = c_out
    return pairs


def to_transformers_state_dict(model: ResNet, *, head: bool = True) -> dict[str, torch.Tensor]:
    """udl's post-activation ResNet's tensors under ``transformers``' names.

    Args:
        model: a :class:`~udl.models.resnet.ResNet` with ``preact=False``.
        head: ``ResNetForImageClassification``'s names (True, the default: ``resnet.`` prefix
            and ``classifier.1``) or ``ResNetModel``'s (False: no prefix, no classifier).

    Returns:
        name -> tensor (the model's own tensors, not copies), batch-norm running statistics
        included: ``load_state_dict(..., strict=True)`` of the ``transformers`` model accepts it.
    """
    owner = "to_transformers_state_dict"
    check_instance(model, "model", owner, ResNet)
    _check_expressible(model.config, owner, "model")
    check_bool(head, "head", owner)
    ours = model.state_dict()
    prefix = _PREFIX if head else ""
    out = {f"{prefix}{hf}.{t}": ours[f"{udl}.{t}"] for udl, hf, names in _name_pairs(model.config) for t in names}
    if head:
        out.update({"classifier.1.weight": ours["head.2.weight"], "classifier.1.bias": ours["head.2.bias"]})
    return out


def from_transformers_state_dict(tensors: dict[str, torch.Tensor], config: ResNetConfig | dict, *,
                                 generator: torch.Generator | int | None = None) -> ResNet:
    """A udl ResNet holding the weights of a ``transformers`` ResNet.

    Args:
        tensors: ``ResNetForImageClassification``'s state dict (names with the ``resnet.``
            prefix) or ``ResNetModel``'s (without; it has no classifier: the fully connected
            layer keeps udl's initial weights, with a warning).
        config: the post-activation :class:`~udl.models.resnet.ResNetConfig`, or the
            ``transformers`` config as a dict (``config.json``, ``ResNetConfig.to_dict()``).
        generator: draws the initial weights before they are replaced (only the fully
            connected layer keeps them, for a ``ResNetModel``). Default: None, torch's global one.

    Returns:
        the :class:`~udl.models.resnet.ResNet`, in training mode as a new module is.

    Raises:
        ValueError: a tensor is missing, left over, or has the wrong shape (one line naming it).
    """
    owner = "from_transformers_state_dict"
    check_instance(tensors, "tensors", owner, dict)
    cfg = _resnet_config(config, owner, "config") if isinstance(config, dict) else \
        check_instance(config, "config", owner, (ResNetConfig, dict))
    _check_expressible(cfg, owner, "config")
    prefix = _PREFIX if any(k.startswith(_PREFIX) for k in tensors) else ""
    model = ResNet(cfg, generator=generator)
    state = model.state_dict()
    wanted = {f"{prefix}{hf}.{t}": f"{udl}.{t}" for udl, hf, names in _name_pairs(cfg) for t in names}
    if prefix:
        wanted.update({"classifier.1.weight": "head.2.weight", "classifier.1.bias": "head.2.bias"})
    missing = [k for k in wanted if k not in tensors]
    extra = [k for k in tensors if k not in wanted]
    if missing or extra:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {extra[0]!r}"
        _refuse(owner, "tensors", f"the tensors of a transformers ResNet of this config "
                f"({len(missing)} missing, {len(extra)} unexpected)", what)
    for hf, udl in wanted.items():
        if tuple(tensors[hf].shape) != tuple(state[udl].shape):
            _refuse(owner, "tensors", f"tensors of the config's shapes ({hf}: {tuple(state[udl].shape)})",
                    tuple(tensors[hf].shape))
    if not prefix:
        warnings.warn("from_transformers_state_dict: a ResNetModel has no classifier; the fully connected layer "
                      "keeps udl's initial weights.", stacklevel=2)
    with torch.no_grad():
        for hf, udl in wanted.items():
            state[udl].copy_(tensors[hf])
    return model


def save_resnet(model: ResNet, folder: str | os.PathLike) -> Path:
    """Write a post-activation udl ResNet as a ``ResNetForImageClassification`` checkpoint folder.

    ``config.json`` (:func:`hf_resnet_config`) and ``model.safetensors`` (:func:`to_transformers_state_dict`,
    safetensors only): ``transformers.ResNetForImageClassification.from_pretrained(folder)``
    loads it with no missing or unexpected keys.

    Returns:
        the folder, as a :class:`~pathlib.Path`.
    """
    owner = "save_resnet"
    check_instance(model, "model", owner, ResNet)
    _check_expressible(model.config, owner, "model")
    config = {**hf_resnet_config(model.config), "dtype": str(next(model.parameters()).dtype).removeprefix("torch.")}
    return write_checkpoint(folder, config, to_transformers_state_dict(model), owner=owner)


def load_resnet(folder: str | os.PathLike, *, dtype: torch.dtype | None = None) -> ResNet:
    """A udl ResNet from a ``transformers`` ResNet checkpoint folder (``save_pretrained``'s).

    Args:
        folder: ``config.json`` + ``model.safetensors`` of a ``ResNetForImageClassification``
            or a ``ResNetModel`` (then the fully connected layer keeps udl's initial weights:
            a warning says so).
        dtype: convert the model to this dtype. Default: None, float32 (udl's default).

    Returns:
        the post-activation :class:`~udl.models.resnet.ResNet`, in evaluation mode (batch
        norm uses the checkpoint's running statistics).
    """
    owner = "load_resnet"
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"The 'dtype' parameter of {owner} must be a floating torch.dtype. Got {dtype!r} instead.")
    config, tensors = read_checkpoint(folder, owner=owner)
    model = from_transformers_state_dict(tensors, config, generator=0)
    return (model if dtype is None else model.to(dtype)).eval()
