"""GPT-2 weights in and out: a Hugging Face checkpoint folder <-> :class:`udl.models.gpt.GPT`.

``transformers``' ``GPT2LMHeadModel.save_pretrained`` writes a folder with ``config.json``
and ``model.safetensors``; :func:`load_gpt2` builds the equal udl model from it, and
:func:`save_gpt2` writes a udl model in the same format, which
``GPT2LMHeadModel.from_pretrained`` reads. With the weights of a published GPT-2 on disk,
the book's §12.7 examples (the probability of a sentence, greedy, top-k, nucleus and beam
decoding) run through udl::

    model = load_gpt2("path/to/gpt2")                  # in evaluation mode, as from_pretrained
    tokenizer = load_tokenizer("path/to/gpt2")         # GPT-2's byte-level BPE (the `tokenizers` package)
    ids = torch.tensor(tokenizer.encode("The cat sat on the mat.").ids)
    sequence_log_prob(model, ids)                      # log Pr(x_2 ... x_N | x_1)
    generate(model, ids, 20, strategy="nucleus", p=0.9, generator=0)

The two models compute the same function: GPT-2 is a pre-LN decoder with learned
positions, GELU (tanh approximation, ``gelu_new``), a final LayerNorm and the output layer
tied to the token embeddings, which is ``GPTConfig``'s default. The names differ, and
GPT-2 stores its linear layers as ``Conv1D`` modules, whose weights are the transposes of
``nn.Linear``'s ``(out, in)``; its attention projects Q, K and V with one ``(D, 3D)`` matrix
(``c_attn``), which udl keeps as three ``(D, D)`` ones::

    GPT-2 (transformer.)        udl
    wte.weight                  embed.weight (= head.weight, tied)
    wpe.weight                  positions.weight
    h.i.ln_1                    layers.i.norm1
    h.i.attn.c_attn  (D, 3D)    layers.i.self_attn.{q,k,v}_proj   (three (D, D), transposed)
    h.i.attn.c_proj  (D, D)     layers.i.self_attn.out_proj       (transposed)
    h.i.ln_2                    layers.i.norm2
    h.i.mlp.c_fc     (D, F)     layers.i.linear1                  (transposed)
    h.i.mlp.c_proj   (F, D)     layers.i.linear2                  (transposed)
    ln_f                        norm

Dropout maps too (``embd_pdrop``, ``attn_pdrop``, ``resid_pdrop``: ``GPTConfig``'s
``embedding_dropout``, ``attention_dropout``, ``dropout``; GPT-2 has none on the MLP's
hidden layer, ``mlp_dropout = 0``), so the two models also agree in training mode.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from udl.interop.checkpoint import read_checkpoint, write_checkpoint
from udl.models.gpt import GPT, GPTConfig

__all__ = ["load_gpt2", "save_gpt2", "gpt2_config", "hf_gpt2_config", "load_tokenizer"]

# Hugging Face's activation names -> udl's (ACT2FN in transformers.activations)
_ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}
_HF_ACTIVATIONS = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}
# options of GPT2Config that change the computation, with the only value udl computes
_FIXED = {"scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
          "add_cross_attention": False, "tie_word_embeddings": True}


def _refuse(name: str, owner: str, wanted: str, got: str) -> None:
    """udl's one-line message: ``The 'name' parameter of owner must <wanted>. Got <got> instead.``"""
    raise ValueError(f"The {name!r} parameter of {owner} must {wanted}. Got {got} instead.")


def gpt2_config(hf: dict) -> GPTConfig:
    """The :class:`GPTConfig` of a GPT-2 ``config.json`` (a dict).

    Maps ``vocab_size``, ``n_positions``, ``n_layer``, ``n_embd``, ``n_head``, ``n_inner``
    (None: 4·D), ``activation_function``, ``layer_norm_epsilon``, ``embd_pdrop``,
    ``attn_pdrop`` and ``resid_pdrop``. Refuses (one line) another ``model_type``, an
    activation udl lacks, untied output weights and the options that change GPT-2's
    attention (``scale_attn_by_inverse_layer_idx``, ``reorder_and_upcast_attn``,
    cross-attention).
    """
    return _from_hf(hf, "gpt2_config", "hf")


def _from_hf(hf: dict, owner: str, name: str) -> GPTConfig:
    if not isinstance(hf, dict):
        raise TypeError(f"The {name!r} parameter of {owner} must be a dict (a parsed config.json). Got {hf!r} instead.")
    if hf.get("model_type") != "gpt2":
        _refuse(name, owner, "describe a GPT-2 (model_type 'gpt2')", f"model_type {hf.get('model_type')!r}")
    act = hf.get("activation_function", "gelu_new")
    if act not in _ACTIVATIONS:
        _refuse(name, owner, f"have an activation_function udl's MLP has, one of {sorted(_ACTIVATIONS)}",
                f"activation_function {act!r}")
    for key, value in _FIXED.items():
        if hf.get(key, value) != value:
            what = "untied output weights" if key == "tie_word_embeddings" else key
            _refuse(name, owner, f"have {key} = {value} (udl's GPT has no {what})", f"{key} = {hf[key]!r}")
    try:
        embd, attn, resid = (float(hf.get(k, 0.1)) for k in ("embd_pdrop", "attn_pdrop", "resid_pdrop"))
        return GPTConfig(vocab_size=hf.get("vocab_size", 50257), context=hf.get("n_positions", 1024),
                         n_layers=hf.get("n_layer", 12), d_model=hf.get("n_embd", 768), n_heads=hf.get("n_head", 12),
                         d_mlp=hf.get("n_inner"), dropout=resid, embedding_dropout=embd, attention_dropout=attn,
                         mlp_dropout=0.0, activation=_ACTIVATIONS[act], eps=float(hf.get("layer_norm_epsilon", 1e-5)),
                         norm_first=True, bias=True, tie_embeddings=True)
    except (TypeError, ValueError) as error:
        _refuse(name, owner, "describe a GPT-2 that GPTConfig accepts", f"a config it refuses ({error})")


def hf_gpt2_config(config: GPTConfig, *, dtype: torch.dtype = torch.float32) -> dict:
    """The ``config.json`` (a dict) of :class:`GPTConfig` ``config`` in GPT-2's terms.

    ``transformers``' ``GPT2LMHeadModel.from_pretrained`` accepts it (architectures
    ``["GPT2LMHeadModel"]``, model_type "gpt2"). Refuses (one line) a config GPT-2 cannot
    express: post-LN, no biases, an output layer not tied to the embeddings, dropout on
    the MLP's hidden layer. ``dtype`` is the weights' dtype it records. Default: float32.
    """
    return _to_hf(config, dtype, "hf_gpt2_config", "config")


def _to_hf(config: GPTConfig, dtype: torch.dtype, owner: str, name: str) -> dict:
    if not isinstance(config, GPTConfig):
        raise TypeError(f"The {name!r} parameter of {owner} must be a GPTConfig. Got {config!r} instead.")
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"The 'dtype' parameter of {owner} must be a floating-point torch.dtype. "
                        f"Got {dtype!r} instead.")
    for ok, what in ((config.norm_first, "norm_first=False (GPT-2 is pre-LN)"),
                     (config.bias, "bias=False (GPT-2 has biases everywhere)"),
                     (config.tie_embeddings, "tie_embeddings=False (GPT-2's lm_head is wte)"),
                     (config.mlp_dropout == 0, f"mlp_dropout={config.mlp_dropout:g} (GPT-2 has no dropout there)")):
        if not ok:
            _refuse(name, owner, "describe a GPT that GPT-2's format can express (pre-LN, biases, output layer "
                                 "tied to the embeddings, no dropout on the MLP's hidden layer)", f"one with {what}")
    attn = config.dropout if config.attention_dropout is None else config.attention_dropout
    special = {"bos_token_id": 50256, "eos_token_id": 50256} if config.vocab_size == 50257 else \
        {"bos_token_id": None, "eos_token_id": None}  # GPT-2's <|endoftext|> only where the vocabulary is GPT-2's
    return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": config.vocab_size,
            "n_positions": config.context, "n_embd": config.d_model, "n_layer": config.n_layers,
            "n_head": config.n_heads, "n_inner": config.d_mlp,
            "activation_function": _HF_ACTIVATIONS[config.activation],
            "layer_norm_epsilon": config.eps, "embd_pdrop": config.p_embedding, "attn_pdrop": attn,
            "resid_pdrop": config.dropout, "initializer_range": 0.02, "tie_word_embeddings": True,
            "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
            "add_cross_attention": False, "use_cache": True, "pad_token_id": None, **special,
            "dtype": str(dtype).removeprefix("torch.")}


def _udl_tensors(hf: dict[str, torch.Tensor], config: GPTConfig, owner: str) -> dict[str, torch.Tensor]:
    """GPT-2's tensors (without the "transformer." prefix) under udl's names."""
    d = config.d_model
    out = {"embed.weight": hf.pop("wte.weight"), "positions.weight": hf.pop("wpe.weight"),
           "norm.weight": hf.pop("ln_f.weight"), "norm.bias": hf.pop("ln_f.bias")}
    for i in range(config.n_layers):
        h, u = f"h.{i}.", f"layers.{i}."
        for a, b in (("ln_1", "norm1"), ("ln_2", "norm2")):
            out[u + b + ".weight"], out[u + b + ".bias"] = hf.pop(h + a + ".weight"), hf.pop(h + a + ".bias")
        qkv_w, qkv_b = hf.pop(h + "attn.c_attn.weight"), hf.pop(h + "attn.c_attn.bias")  # (D, 3D), (3D,)
        for name, w, b in zip("qkv", qkv_w.split(d, dim=1), qkv_b.split(d)):  # Conv1D stores (in, out)
            out[u + f"self_attn.{name}_proj.weight"], out[u + f"self_attn.{name}_proj.bias"] = w.T, b  # (D, D)
        for a, b in (("attn.c_proj", "self_attn.out_proj"), ("mlp.c_fc", "linear1"), ("mlp.c_proj", "linear2")):
            out[u + b + ".weight"], out[u + b + ".bias"] = hf.pop(h + a + ".weight").T, hf.pop(h + a + ".bias")
    head = hf.pop("lm_head.weight", None)
    if head is not None and not torch.equal(head, out["embed.weight"]):
        _refuse("folder", owner, "hold an lm_head.weight equal to wte.weight (udl's GPT ties them)",
                "a different lm_head.weight (untied output weights)")
    if hf:
        _refuse("folder", owner, "hold only the tensors of the GPT-2 its config.json describes",
                f"also {sorted(hf)[:4]}")
    return out


def load_gpt2(folder: str | os.PathLike, *, dtype: torch.dtype | None = None) -> GPT:
    """A :class:`GPT` holding the weights of a GPT-2 checkpoint folder.

    Args:
        folder: a folder written by ``GPT2LMHeadModel.save_pretrained`` (or ``GPT2Model``'s):
            ``config.json`` and ``model.safetensors`` (or its shards). Tensor names with or
            without the "transformer." prefix are read; old checkpoints' ``attn.bias`` and
            ``attn.masked_bias`` buffers (the causal mask) are ignored.
        dtype: the model's floating-point dtype. Default: None, the checkpoint's own.

    Returns:
        The model in evaluation mode, as ``from_pretrained`` returns it (call ``.train()``
        before fine-tuning); its output layer is tied to the token embeddings.

    Raises:
        ValueError (one line): a missing or unreadable file, another model_type, an
        activation udl lacks, untied output weights, missing or unexpected tensors.

    Example::

        >>> import tempfile
        >>> from udl.models.gpt import GPTConfig
        >>> folder = tempfile.mkdtemp()
        >>> _ = save_gpt2(GPT(GPTConfig.tiny(), generator=0), folder)
        >>> load_gpt2(folder).config.n_layers
        2
    """
    owner = "load_gpt2"
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"The 'dtype' parameter of {owner} must be a floating-point torch.dtype or None. "
                        f"Got {dtype!r} instead.")
    hf_config, tensors = read_checkpoint(folder, owner=owner)
    config = _from_hf(hf_config, owner, "folder")
    hf = {}
    for name, t in tensors.items():
        name = name.removeprefix("transformer.")
        if name.endswith((".attn.bias", ".attn.masked_bias")):  # c_attn.bias ends ".c_attn.bias"
            continue  # the causal mask buffers of old checkpoints
        hf[name] = t
    try:
        state = _udl_tensors(hf, config, owner)
    except KeyError as missing:
        _refuse("folder", owner, f"hold the tensor {missing.args[0]!r} (or transformer.{missing.args[0]})",
                "a checkpoint without it")
    for name, t in state.items():
        if not t.is_floating_point():
            _refuse("folder", owner, f"hold floating-point weights (for udl's {name})", f"{t.dtype}")
    dtype = dtype or state["embed.weight"].dtype
    with torch.device("meta"):  # shapes only: the checkpoint's tensors are assigned below, nothing is drawn
        model = GPT(config)
    expected = {n: p.shape for n, p in model.state_dict().items()}
    for name, t in state.items():
        if t.shape != expected[name]:
            _refuse("folder", owner, f"hold udl's {name} with shape {tuple(expected[name])}, as config.json says",
                    f"shape {tuple(t.shape)}")
    state = {n: t.to(dtype).contiguous() for n, t in state.items()}
    state["head.weight"] = state["embed.weight"]
    model.load_state_dict(state, assign=True)
    model.head.weight = model.embed.weight  # tied, as GPT-2's lm_head and wte
    return model.eval()


def save_gpt2(model: GPT, folder: str | os.PathLike) -> Path:
    """Write ``model`` as a GPT-2 checkpoint folder that ``GPT2LMHeadModel.from_pretrained`` reads.

    Writes ``config.json`` (:func:`hf_gpt2_config`) and ``model.safetensors`` with
    GPT-2's tensor names ("transformer." prefix, ``Conv1D`` weights transposed, Q, K and V
    joined in ``c_attn``; the tied output layer is not stored, as ``save_pretrained``
    does), in the model's dtype. Refuses (one line) a GPT that GPT-2 cannot express
    (post-LN, no biases, untied output layer, dropout on the MLP's hidden layer).

    Returns:
        The folder, as a :class:`~pathlib.Path`.
    """
    owner = "save_gpt2"
    if not isinstance(model, GPT):
        raise TypeError(f"The 'model' parameter of {owner} must be a GPT. Got {type(model).__name__} instead.")
    config = model.config
    dtype = model.embed.weight.dtype
    hf_config = _to_hf(config, dtype, owner, "model")
    s = {n: t.detach() for n, t in model.state_dict().items()}
    out = {"transformer.wte.weight": s["embed.weight"], "transformer.wpe.weight": s["positions.weight"],
           "transformer.ln_f.weight": s["norm.weight"], "transformer.ln_f.bias": s["norm.bias"]}
    for i in range(config.n_layers):
        h, u = f"transformer.h.{i}.", f"layers.{i}."
        for a, b in (("ln_1", "norm1"), ("ln_2", "norm2")):
            out[h + a + ".weight"], out[h + a + ".bias"] = s[u + b + ".weight"], s[u + b + ".bias"]
        out[h + "attn.c_attn.weight"] = torch.cat([s[u + f"self_attn.{n}_proj.weight"].T for n in "qkv"], 1)  # (D, 3D)
        out[h + "attn.c_attn.bias"] = torch.cat([s[u + f"self_attn.{n}_proj.bias"] for n in "qkv"])  # (3D,)
        for a, b in (("attn.c_proj", "self_attn.out_proj"), ("mlp.c_fc", "linear1"), ("mlp.c_proj", "linear2")):
            out[h + a + ".weight"], out[h + a + ".bias"] = s[u + b + ".weight"].T, s[u + b + ".bias"]
    return write_checkpoint(folder, hf_config, out, owner=owner)


def load_tokenizer(folder: str | os.PathLike):
    """The tokenizer of a checkpoint folder, as a ``tokenizers.Tokenizer``.

    Reads ``tokenizer.json`` (what ``save_pretrained`` of a fast tokenizer writes), or
    else GPT-2's original ``vocab.json`` and ``merges.txt`` as a byte-level BPE. Needs the
    ``tokenizers`` package (installed with ``transformers``). ``tokenizer.encode(text).ids``
    gives the token ids, ``tokenizer.decode(ids)`` the text.

    Raises:
        ValueError: the folder holds neither form (one line). ImportError: no ``tokenizers``.
    """
    owner = "load_tokenizer"
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"The 'folder' parameter of {owner} must be a path. Got {folder!r} instead.")
    try:
        import tokenizers
    except ImportError as error:  # pragma: no cover - tokenizers comes with transformers
        raise ImportError(f"{owner} needs the 'tokenizers' package (pip install tokenizers).") from error
    folder = Path(folder)
    try:
        if (folder / "tokenizer.json").is_file():
            return tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
            return tokenizers.ByteLevelBPETokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    except Exception as error:  # tokenizers raises its own Exception subclass for a malformed file
        _refuse("folder", owner, "hold a readable tokenizer", f"{str(folder)!r} ({type(error).__name__}: {error})")
    _refuse("folder", owner, "hold tokenizer.json, or vocab.json and merges.txt", repr(str(folder)))
