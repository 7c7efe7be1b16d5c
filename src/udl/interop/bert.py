"""BERT checkpoints in Hugging Face's format <-> udl's :class:`~udl.models.bert.BERT`.

A folder that ``transformers``' ``BertModel``, ``BertForMaskedLM`` or ``BertForPreTraining``
wrote with ``save_pretrained`` (``config.json`` and ``model.safetensors``) becomes a udl
model, and a udl model becomes such a folder::

    mlm = load_bert("bert-base-uncased/")      # a MaskedLanguageModel: the folder holds the MLM head
    save_bert(mlm, "my-bert/")                  # transformers.BertForMaskedLM.from_pretrained("my-bert/") loads it

The two libraries name the same weights differently; the mapping is one line per
weight (:func:`hf_names`)::

    udl (BERT)                          Hugging Face (BertModel)
    embed.weight                        embeddings.word_embeddings.weight        Ω_e, |V| x D
    positions.weight                    embeddings.position_embeddings.weight    P, N_max x D
    segments.weight                     embeddings.token_type_embeddings.weight  S, 2 x D
    embed_norm                          embeddings.LayerNorm
    layers.l.self_attn.{q,k,v}_proj     encoder.layer.l.attention.self.{query,key,value}
    layers.l.self_attn.out_proj         encoder.layer.l.attention.output.dense   Ω_c
    layers.l.norm1                      encoder.layer.l.attention.output.LayerNorm
    layers.l.linear1, linear2           encoder.layer.l.intermediate.dense, output.dense
    layers.l.norm2                      encoder.layer.l.output.LayerNorm
    pooler                              pooler.dense
    (MaskedLanguageModel) dense, norm   cls.predictions.transform.dense, .LayerNorm
    (MaskedLanguageModel) bias          cls.predictions.bias   (the output matrix is Ω_eᵀ: tied)

Both are the post-LN layer of the book's fig. 12.7 with dropout at the same three
places (the embeddings, the attention weights, each block's output before the residual
sum), so the same weights give the same numbers: the tests compare logits to 1e-5 in
float32 and 1e-12 in float64, and the dropout masks too, seed for seed.

Two differences in defaults, not in the model: udl's :class:`~udl.models.bert.BERT`
masks positions holding ``pad_id`` when no ``padding_mask`` is given, while Hugging
Face attends to every position unless given an ``attention_mask``; pass the mask
explicitly to either and they agree (``padding_mask`` is ``attention_mask.bool()``).
And a loaded model is in evaluation mode, as ``from_pretrained`` returns it.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import torch

from udl.interop.checkpoint import read_checkpoint, write_checkpoint
from udl.models.bert import BERT, BertConfig, MaskedLanguageModel
from udl.validate import as_generator, check_bool, check_int

__all__ = ["load_bert", "save_bert", "bert_config_from_hf", "hf_config_from_bert", "hf_names"]

# Hugging Face's hidden_act -> udl's activation (gelu_new and gelu_pytorch_tanh are both GELU's tanh form)
_FROM_HF_ACTIVATION = {"gelu": "gelu", "relu": "relu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}
_TO_HF_ACTIVATION = {"gelu": "gelu", "relu": "relu", "gelu_tanh": "gelu_pytorch_tanh"}
_HEAD = "cls.predictions.transform.dense.weight"  # present in BertForMaskedLM and BertForPreTraining checkpoints
_IGNORED = re.compile(r"^(embeddings\.position_ids|embeddings\.token_type_ids|cls\.seq_relationship\.\w+)$")
_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


# --------------------------------------------------------------------------- names
def hf_names(n_layers: int, *, head: bool) -> dict[str, str]:
    """udl's parameter name -> Hugging Face's, for a BERT of ``n_layers`` layers.

    Args:
        n_layers: L, the number of transformer layers.
        head: True for a :class:`~udl.models.bert.MaskedLanguageModel` (udl's names start
            with ``encoder.``, Hugging Face's with ``bert.``, and the MLM head is included),
            False for a :class:`~udl.models.bert.BERT` (``BertModel``'s names, no prefix).

    Example::

        >>> hf_names(1, head=False)["layers.0.self_attn.q_proj.weight"]
        'encoder.layer.0.attention.self.query.weight'
        >>> hf_names(1, head=True)["bias"]
        'cls.predictions.bias'
    """
    n_layers = check_int(n_layers, "n_layers", "hf_names")
    check_bool(head, "head", "hf_names")
    names = {"embed.weight": "embeddings.word_embeddings.weight",
             "positions.weight": "embeddings.position_embeddings.weight",
             "segments.weight": "embeddings.token_type_embeddings.weight"}
    pairs = {"embed_norm": "embeddings.LayerNorm", "pooler": "pooler.dense"}
    for i in range(n_layers):
        ours, theirs = f"layers.{i}.", f"encoder.layer.{i}."
        pairs.update({ours + "self_attn.q_proj": theirs + "attention.self.query",
                      ours + "self_attn.k_proj": theirs + "attention.self.key",
                      ours + "self_attn.v_proj": theirs + "attention.self.value",
                      ours + "self_attn.out_proj": theirs + "attention.output.dense",
                      ours + "norm1": theirs + "attention.output.LayerNorm",
                      ours + "linear1": theirs + "intermediate.dense",
                      ours + "linear2": theirs + "output.dense",
                      ours + "norm2": theirs + "output.LayerNorm"})
    for ours, theirs in pairs.items():
        names.update({f"{ours}.weight": f"{theirs}.weight", f"{ours}.bias": f"{theirs}.bias"})
    if not head:
        return names
    names = {f"encoder.{ours}": f"bert.{theirs}" for ours, theirs in names.items()}
    names.update({"dense.weight": "cls.predictions.transform.dense.weight",
                  "dense.bias": "cls.predictions.transform.dense.bias",
                  "norm.weight": "cls.predictions.transform.LayerNorm.weight",
                  "norm.bias": "cls.predictions.transform.LayerNorm.bias",
                  "bias": "cls.predictions.bias"})
    return names


# --------------------------------------------------------------------------- configurations
def bert_config_from_hf(config: dict, *, owner: str = "bert_config_from_hf") -> BertConfig:
    """A :class:`~udl.models.bert.BertConfig` from the dict of a Hugging Face BERT ``config.json``.

    Read: ``vocab_size``, ``hidden_size``, ``num_hidden_layers``, ``num_attention_heads``,
    ``intermediate_size``, ``hidden_act`` ("gelu"; "gelu_new" / "gelu_pytorch_tanh" become
    "gelu_tanh"; "relu"), ``max_position_embeddings``, ``type_vocab_size``,
    ``layer_norm_eps``, ``hidden_dropout_prob``, ``attention_probs_dropout_prob``,
    ``pad_token_id`` and ``initializer_range`` (absent keys take ``transformers``'
    defaults). BERT has no dropout on the MLP's hidden layer (``mlp_dropout = 0``); an
    attention dropout equal to the hidden one is ``attention_dropout=None`` (the same rate).

    Raises:
        ValueError: a model udl's BERT cannot be: another ``model_type``, positions other
            than "absolute" (relative position embeddings), a decoder (``is_decoder``,
            cross-attention), or an activation udl lacks.
    """
    if not isinstance(config, dict):
        raise TypeError(f"The 'config' parameter of {owner} must be a dict (config.json). "
                        f"Got {type(config).__name__} instead.")

    def refuse(what: str, got) -> None:
        raise ValueError(f"The 'config' parameter of {owner} must describe {what}. Got {got} instead.")

    old = "model_type" not in config and str((config.get("architectures") or [""])[0]).startswith("Bert")
    if config.get("model_type") != "bert" and not old:  # old checkpoints name only their architecture
        refuse("a BERT (model_type 'bert')", f"model_type {config.get('model_type')!r}")
    if config.get("position_embedding_type", "absolute") != "absolute":
        refuse("learned absolute positions (position_embedding_type 'absolute'; udl has no relative ones)",
               f"{config['position_embedding_type']!r}")
    if config.get("is_decoder") or config.get("add_cross_attention"):
        refuse("an encoder (is_decoder and add_cross_attention false)",
               f"is_decoder={config.get('is_decoder')}, add_cross_attention={config.get('add_cross_attention')}")
    act = config.get("hidden_act", "gelu")
    if act not in _FROM_HF_ACTIVATION:
        refuse(f"an activation udl has ({', '.join(map(repr, _FROM_HF_ACTIVATION))})", f"hidden_act {act!r}")
    p_hidden, p_attention = config.get("hidden_dropout_prob", 0.1), config.get("attention_probs_dropout_prob", 0.1)
    fields = dict(vocab_size=config.get("vocab_size", 30522), d_model=config.get("hidden_size", 768),
                  n_layers=config.get("num_hidden_layers", 12), n_heads=config.get("num_attention_heads", 12),
                  d_mlp=config.get("intermediate_size", 3072), activation=_FROM_HF_ACTIVATION[act],
                  context=config.get("max_position_embeddings", 512), n_segments=config.get("type_vocab_size", 2),
                  eps=config.get("layer_norm_eps", 1e-12), dropout=p_hidden,
                  attention_dropout=None if p_attention == p_hidden else p_attention, mlp_dropout=0.0,
                  pad_id=config.get("pad_token_id", 0), init_std=config.get("initializer_range", 0.02),
                  norm_first=False)
    try:
        return BertConfig(**fields)
    except (TypeError, ValueError) as error:  # BertConfig names its own field (n_heads for num_attention_heads...)
        raise ValueError(f"The 'config' parameter of {owner} must describe a BERT that BertConfig accepts. "
                         f"Got BertConfig's refusal: {error}") from None


def hf_config_from_bert(config: BertConfig, *, head: bool, dtype: torch.dtype = torch.float32) -> dict:
    """The ``config.json`` dict of a Hugging Face BERT with the shape of ``config``.

    Args:
        config: a :class:`~udl.models.bert.BertConfig`.
        head: True: ``architectures`` is ``["BertForMaskedLM"]``; False: ``["BertModel"]``.
        dtype: the weights' dtype, recorded as ``"dtype"``. Default: float32.

    Raises:
        ValueError: a configuration Hugging Face's BERT cannot express: pre-LN
            (``norm_first``) or dropout on the MLP's hidden layer (``mlp_dropout > 0``).
    """
    return _hf_config(config, head, dtype, "hf_config_from_bert", "config")


def _hf_config(config: BertConfig, head: bool, dtype: torch.dtype, owner: str, name: str) -> dict:
    """:func:`hf_config_from_bert`, its refusals naming parameter ``name`` of ``owner``."""
    if not isinstance(config, BertConfig):
        raise TypeError(f"The {name!r} parameter of {owner} must be a BertConfig. Got {type(config).__name__} "
                        f"instead.")
    check_bool(head, "head", owner)
    _check_dtype(dtype, owner, optional=False)
    if config.norm_first:
        raise ValueError(f"The {name!r} parameter of {owner} must be post-LN (norm_first=False), as Hugging "
                         f"Face's BERT is. Got norm_first=True instead.")
    if config.mlp_dropout > 0:
        raise ValueError(f"The {name!r} parameter of {owner} must have mlp_dropout=0 (Hugging Face's BERT has no "
                         f"dropout on the MLP's hidden layer). Got mlp_dropout={config.mlp_dropout} instead.")
    return {"architectures": ["BertForMaskedLM" if head else "BertModel"], "model_type": "bert",
            "vocab_size": config.vocab_size, "hidden_size": config.d_model, "num_hidden_layers": config.n_layers,
            "num_attention_heads": config.n_heads, "intermediate_size": config.d_mlp,
            "hidden_act": _TO_HF_ACTIVATION[config.activation], "max_position_embeddings": config.context,
            "type_vocab_size": max(1, config.n_segments),  # no segments: one all-zero row, which adds nothing
            "layer_norm_eps": config.eps, "hidden_dropout_prob": config.dropout,
            "attention_probs_dropout_prob": config.dropout if config.attention_dropout is None
            else config.attention_dropout,
            "pad_token_id": config.pad_id, "initializer_range": config.init_std,
            "position_embedding_type": "absolute", "is_decoder": False, "add_cross_attention": False,
            "tie_word_embeddings": True, "dtype": str(dtype).removeprefix("torch.")}


# --------------------------------------------------------------------------- loading
def _check_dtype(dtype, owner: str, *, optional: bool = True) -> torch.dtype | None:
    if not (dtype is None and optional or dtype in _DTYPES):
        raise ValueError(f"The 'dtype' parameter of {owner} must be {'None or ' if optional else ''}a floating "
                         f"dtype (torch.float32, torch.float64, ...). Got {dtype!r} instead.")
    return dtype


def _normalised(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Hugging Face's names without the ``bert.`` prefix, old checkpoints' ``LayerNorm.gamma/beta`` renamed."""
    out = {}
    for name, t in tensors.items():
        name = name.removeprefix("bert.")
        name = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name))
        out[name] = t
    return out


def load_bert(folder: str | os.PathLike, *, dtype: torch.dtype | None = None,
              generator: torch.Generator | int | None = None) -> BERT | MaskedLanguageModel:
    """A udl BERT with the weights of a Hugging Face BERT checkpoint folder.

    What comes back depends on what the folder holds:

    - a masked-language-model head (``cls.predictions.*``: ``BertForMaskedLM``,
      ``BertForPreTraining``): a :class:`~udl.models.bert.MaskedLanguageModel`, whose
      ``encoder`` is the BERT;
    - no such head (``BertModel``): a :class:`~udl.models.bert.BERT`.

    Names may or may not start with ``bert.``; old checkpoints' ``LayerNorm.gamma`` /
    ``LayerNorm.beta`` are read as weight and bias. ``BertForPreTraining``'s
    next-sentence head (``cls.seq_relationship``) is ignored: udl's model has none (the
    book's BERT is pre-trained on masked tokens alone). A checkpoint without a pooler
    (``BertForMaskedLM`` has none) gets a fresh one, drawn as :class:`~udl.models.bert.BERT`
    draws it (N(0, σ²) weights, zero bias), with a warning: it is only used by
    classifiers, which train it. Other tensors that udl has no place for (a
    fine-tuned task head) are left out with a warning.

    Args:
        folder: a checkpoint folder (``config.json``, ``model.safetensors``), see
            :func:`udl.interop.checkpoint.read_checkpoint`.
        dtype: the model's dtype. Default: None, the dtype the checkpoint stores.
        generator: randomness of a missing pooler, a ``torch.Generator`` or an int seed.
            Default: None (torch's global generator).

    Returns:
        The model, in evaluation mode (as ``from_pretrained`` returns it).

    Raises:
        ValueError: the folder, its configuration (see :func:`bert_config_from_hf`) or
            its tensors (a missing or wrongly shaped weight, an untied output matrix) do
            not describe a BERT udl can hold; one line, naming the tensor.

    Example::

        >>> import tempfile
        >>> mlm = MaskedLanguageModel(BERT(BertConfig.tiny(), generator=0), generator=1)
        >>> folder = save_bert(mlm, tempfile.mkdtemp())
        >>> torch.equal(load_bert(folder).encoder.embed.weight, mlm.encoder.embed.weight)
        True
    """
    owner = "load_bert"
    dtype = _check_dtype(dtype, owner)
    generator = as_generator(generator, owner)
    hf_config, tensors = read_checkpoint(folder, owner=owner)
    config = bert_config_from_hf(hf_config, owner=owner)
    tensors = _normalised(tensors)
    head = _HEAD in tensors
    if head and config.activation != "gelu":
        raise ValueError(f"The 'folder' parameter of {owner} must hold an MLM head with hidden_act 'gelu' (udl's "
                         f"head applies GELU). Got hidden_act {hf_config.get('hidden_act')!r} instead.")
    names = hf_names(config.n_layers, head=head)
    prefix = "bert." if head else ""
    found = {}  # udl name -> tensor, with Hugging Face's names as read (prefix dropped)
    for ours, theirs in names.items():
        theirs = theirs.removeprefix(prefix)
        if theirs in tensors:
            found[ours] = tensors.pop(theirs)
    if head:
        _untie(tensors, found, hf_config, owner)
    pooler = "encoder.pooler" if head else "pooler"
    pooler_missing = f"{pooler}.weight" not in found and f"{pooler}.bias" not in found
    missing = [names[n] for n in names if n not in found and not (pooler_missing and n.startswith(pooler + "."))]
    if missing:
        raise ValueError(f"The 'folder' parameter of {owner} must hold every weight of a BERT with "
                         f"{config.n_layers} layers. Got {str(folder)!r} without {', '.join(missing[:4])}"
                         f"{' ...' if len(missing) > 4 else ''} instead.")
    unused = sorted(n for n in tensors if not _IGNORED.match(n))
    if unused:
        warnings.warn(f"{owner}: {len(unused)} tensors of {str(folder)!r} have no place in udl's BERT and are left "
                      f"out: {', '.join(unused[:4])}{' ...' if len(unused) > 4 else ''}", stacklevel=2)
    dtype = dtype or found["encoder.embed.weight" if head else "embed.weight"].dtype
    with torch.device("meta"):  # shapes only: the checkpoint's tensors become the parameters
        encoder = BERT(config)
        model = MaskedLanguageModel(encoder) if head else encoder
    shapes = {n: p.shape for n, p in model.state_dict().items()}
    for name, t in found.items():
        if t.shape != shapes[name]:
            raise ValueError(f"The 'folder' parameter of {owner} must hold tensors of the shapes its config.json "
                             f"gives. Got {names[name]} of shape {tuple(t.shape)}, not {tuple(shapes[name])}, instead.")
    if pooler_missing:
        warnings.warn(f"{owner}: {str(folder)!r} has no pooler (BertForMaskedLM saves none); the BERT gets a "
                      f"freshly drawn one (used only by classifiers, which train it)", stacklevel=2)
        d, std = config.d_model, config.init_std
        found[f"{pooler}.weight"] = torch.randn(d, d, generator=generator) * std  # BERT's N(0, σ²)
        found[f"{pooler}.bias"] = torch.zeros(d)
    model.load_state_dict({n: t.to(dtype) for n, t in found.items()}, assign=True)
    return model.eval()


def _untie(tensors: dict, found: dict, hf_config: dict, owner: str) -> None:
    """Check the output layer of an MLM head is tied to Ω_e (udl's always is) and take its bias."""
    decoder, embed = tensors.pop("cls.predictions.decoder.weight", None), found.get("encoder.embed.weight")
    if decoder is None and hf_config.get("tie_word_embeddings", True) is False or \
            decoder is not None and embed is not None and not torch.equal(decoder, embed):
        raise ValueError(f"The 'folder' parameter of {owner} must hold an MLM head tied to the token embeddings "
                         f"(udl's output matrix is Ω_eᵀ). Got an untied cls.predictions.decoder.weight instead.")
    bias = tensors.pop("cls.predictions.decoder.bias", None)  # old checkpoints store the bias twice
    if "bias" not in found and bias is not None:
        found["bias"] = bias
    elif bias is not None and not torch.equal(bias, found["bias"]):
        raise ValueError(f"The 'folder' parameter of {owner} must hold one output bias. Got "
                         f"cls.predictions.bias and cls.predictions.decoder.bias that differ instead.")


# --------------------------------------------------------------------------- saving
def save_bert(model: BERT | MaskedLanguageModel, folder: str | os.PathLike) -> Path:
    """Write ``model`` as a Hugging Face BERT checkpoint folder (``config.json``, ``model.safetensors``).

    A :class:`~udl.models.bert.MaskedLanguageModel` is written as ``BertForMaskedLM``
    (plus the encoder's pooler, which ``BertForMaskedLM`` ignores: :func:`load_bert`
    reads the folder back whole), a :class:`~udl.models.bert.BERT` as ``BertModel``;
    ``from_pretrained`` of that class loads every weight. The tied output matrix is
    written once, as the token embeddings. An encoder without segments is written with
    one all-zero segment row (``type_vocab_size`` 1), which adds nothing.

    Args:
        model: the model to write (its weights' dtype is kept).
        folder: where to write (created if missing; files there are replaced).

    Returns:
        The folder, as a :class:`~pathlib.Path`.

    Raises:
        ValueError: a model Hugging Face's BERT cannot express (see
            :func:`hf_config_from_bert`; an MLM head needs the GELU activation).
    """
    owner = "save_bert"
    if not isinstance(model, (BERT, MaskedLanguageModel)):
        raise TypeError(f"The 'model' parameter of {owner} must be a BERT or a MaskedLanguageModel. "
                        f"Got {type(model).__name__} instead.")
    head = isinstance(model, MaskedLanguageModel)
    config = model.config
    if head and config.activation != "gelu":
        raise ValueError(f"The 'model' parameter of {owner} must use activation 'gelu' (udl's MLM head applies "
                         f"GELU; Hugging Face's applies hidden_act). Got {config.activation!r} instead.")
    state = model.state_dict()
    dtype = state["encoder.embed.weight" if head else "embed.weight"].dtype
    hf_config = _hf_config(config, head, dtype, owner, "model")
    names = hf_names(config.n_layers, head=head)
    if config.n_segments == 0:
        state["encoder.segments.weight" if head else "segments.weight"] = torch.zeros(1, config.d_model, dtype=dtype)
    tensors = {names[n]: t for n, t in state.items()}
    return write_checkpoint(folder, hf_config, tensors, owner=owner)
