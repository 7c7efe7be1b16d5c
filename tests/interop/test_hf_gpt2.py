"""udl.interop.gpt2 against transformers' GPT2LMHeadModel: weights in and out, logits, cache, decoding, dropout.

Every transformers model is built from a small config with random weights (nothing is
downloaded); the published sizes are built on the meta device, for their counts.
"""

import inspect
import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from udl.interop.gpt2 import gpt2_config, hf_gpt2_config, load_gpt2, save_gpt2  # noqa: E402
from udl.interop.checkpoint import read_checkpoint, write_checkpoint  # noqa: E402
from udl.models.decoding import beam_search, generate  # noqa: E402
from udl.models.gpt import GPT, GPTConfig, parameter_count, sequence_log_prob, token_log_probs  # noqa: E402

SMALL = dict(vocab_size=37, n_positions=24, n_embd=32, n_layer=2, n_head=4, bos_token_id=0, eos_token_id=0)


def _hf(seed=0, dtype=torch.float32, **changes):
    """A random GPT2LMHeadModel (eval mode); biases and LayerNorms randomised too, so every tensor matters."""
    config = transformers.GPT2Config(**{**SMALL, **changes})
    torch.manual_seed(seed)
    model = transformers.GPT2LMHeadModel(config).to(dtype)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(torch.randn_like(p) * 0.1 + (1.0 if name.endswith("ln_1.weight") or "ln_2.weight" in name
                                                     or name.endswith("ln_f.weight") else 0.0))
    return model.eval()


def _tokens(shape, seed=0, vocab=37):
    return torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2")
    _hf(seed=1).save_pretrained(folder)
    return folder


# --------------------------------------------------------------------------- HF -> udl
@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_loaded_weights_give_hf_logits(hf_folder, dtype, atol):
    hf = transformers.GPT2LMHeadModel.from_pretrained(hf_folder).to(dtype).eval()
    ours = load_gpt2(hf_folder, dtype=dtype)
    assert not ours.training  # evaluation mode, as from_pretrained (and load_bert, load_resnet) return it
    assert ours.head.weight is ours.embed.weight and ours.embed.weight.dtype == dtype
    tokens = _tokens((3, 17))
    with torch.no_grad():
        expected = hf(tokens).logits
        got = ours(tokens)
    assert got.dtype == dtype
    torch.testing.assert_close(got, expected, rtol=0, atol=atol)


def test_padded_batch_equals_hf_with_attention_mask(hf_folder):
    hf = transformers.GPT2LMHeadModel.from_pretrained(hf_folder).double().eval()
    ours = load_gpt2(hf_folder, dtype=torch.float64).eval()
    tokens = _tokens((3, 9), seed=2)
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, :4], mask[2, :8] = 0, 0  # left padding
    position_ids = (mask.cumsum(1) - 1).clamp(min=0)  # what HF's generate passes
    with torch.no_grad():
        expected = hf(tokens, attention_mask=mask, position_ids=position_ids).logits
        got = ours(tokens, padding_mask=mask)
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], rtol=0, atol=1e-12)


def test_cache_decoding_equals_hf_past_key_values(hf_folder):
    hf = transformers.GPT2LMHeadModel.from_pretrained(hf_folder).double().eval()
    ours = load_gpt2(hf_folder, dtype=torch.float64).eval()
    tokens = _tokens((2, 12), seed=3)
    cache, past, got, expected = {}, None, [], []
    CACHE = "cache" if "cache" in inspect.signature(hf.forward).parameters else "past_key_values"  # renamed in 5.x
    with torch.no_grad():
        for a, b in ((0, 5), (5, 6), (6, 12)):
            got.append(ours(tokens[:, a:b], cache=cache))
            out = hf(tokens[:, a:b], **{CACHE: past}, use_cache=True)
            past = getattr(out, CACHE)
            expected.append(out.logits)
    torch.testing.assert_close(torch.cat(got, 1), torch.cat(expected, 1), rtol=0, atol=1e-12)


def test_old_checkpoint_names_and_buffers_are_read(hf_folder, tmp_path):
    """GPT2Model-style names (no "transformer." prefix), the attn.bias / masked_bias buffers and a stored lm_head."""
    config, tensors = read_checkpoint(hf_folder)
    old = {name.removeprefix("transformer."): t for name, t in tensors.items()}
    n = config["n_positions"]
    for i in range(config["n_layer"]):
        old[f"h.{i}.attn.bias"] = torch.tril(torch.ones(n, n, dtype=torch.uint8))[None, None]
        old[f"h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    old["lm_head.weight"] = old["wte.weight"].clone()
    write_checkpoint(tmp_path, config, old)
    a, b = load_gpt2(hf_folder).eval(), load_gpt2(tmp_path).eval()
    tokens = _tokens((1, 6))
    assert torch.equal(a(tokens), b(tokens))


def test_sentence_log_probability_is_hfs_sum_of_log_softmax(hf_folder):
    """§12.7.1: log Pr(x_2..x_N | x_1) through the loaded model equals the sum of HF's log-softmax at the targets."""
    hf = transformers.GPT2LMHeadModel.from_pretrained(hf_folder).double().eval()
    ours = load_gpt2(hf_folder, dtype=torch.float64).eval()
    sentences = _tokens((4, 11), seed=5)
    with torch.no_grad():
        logp = torch.log_softmax(hf(sentences[:, :-1]).logits, -1).gather(-1, sentences[:, 1:, None])[..., 0]
    torch.testing.assert_close(sequence_log_prob(ours, sentences), logp.sum(1), rtol=0, atol=1e-12)
    torch.testing.assert_close(token_log_probs(ours, sentences, use_cache=True), logp, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- decoding against HF's generate
def test_batched_greedy_equals_hf_generate_with_left_padding(hf_folder):
    hf = transformers.GPT2LMHeadModel.from_pretrained(hf_folder).double().eval()
    ours = load_gpt2(hf_folder, dtype=torch.float64).eval()
    prompts = [_tokens((n,), seed=10 + n) for n in (6, 2, 4)]
    n_new = 8
    width = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):], mask[i, width - len(p):] = p, 1
    with torch.no_grad():
        expected = hf.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=n_new, min_new_tokens=n_new,
                               pad_token_id=0, eos_token_id=None)
    assert torch.equal(generate(ours, ids, n_new, padding_mask=mask), expected)
    for got, p, row in zip(generate(ours, prompts, n_new), prompts, expected):
        assert torch.equal(got, torch.cat([p, row[width:]]))


def test_beam_search_equals_hf(hf_folder):
    hf = transformers.GPT2LMHeadModel.from_pretrained(hf_folder).double().eval()
    ours = load_gpt2(hf_folder, dtype=torch.float64).eval()
    prompt = _tokens((3,), seed=7)
    with torch.no_grad():
        expected = hf.generate(prompt[None], do_sample=False, num_beams=3, max_new_tokens=5, min_new_tokens=5,
                               length_penalty=0.0, early_stopping=True, pad_token_id=0, eos_token_id=None)
    seqs, _ = beam_search(ours, prompt, 5, beam_width=3)
    assert torch.equal(seqs[0], expected[0])


# --------------------------------------------------------------------------- udl -> HF
@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_saved_udl_model_loads_in_transformers(tmp_path, dtype, atol):
    config = GPTConfig(vocab_size=29, context=20, n_layers=2, d_model=24, n_heads=3, d_mlp=40, dropout=0.1,
                       embedding_dropout=0.05, attention_dropout=0.2, eps=1e-6)
    ours = GPT(config, generator=3).to(dtype).eval()
    with torch.no_grad():
        for p in ours.parameters():
            if p.dim() == 1:
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel()), dtype=dtype) * 0.1)
    save_gpt2(ours, tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["architectures"] == ["GPT2LMHeadModel"] and written["model_type"] == "gpt2"
    hf, info = transformers.GPT2LMHeadModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    hf = hf.to(dtype).eval()
    c = hf.config
    assert (c.embd_pdrop, c.attn_pdrop, c.resid_pdrop, c.layer_norm_epsilon, c.n_inner) == (0.05, 0.2, 0.1, 1e-6, 40)
    tokens = _tokens((2, 20), vocab=29)
    with torch.no_grad():
        torch.testing.assert_close(hf(tokens).logits, ours(tokens), rtol=0, atol=atol)
    back = load_gpt2(tmp_path, dtype=dtype)
    assert back.config == config
    for (name, a), (_, b) in zip(back.state_dict().items(), ours.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("changes, match", [(dict(norm_first=False), "norm_first=False"),
                                            (dict(bias=False), "bias=False"),
                                            (dict(tie_embeddings=False), "tie_embeddings=False"),
                                            (dict(mlp_dropout=0.1), "mlp_dropout=0.1")])
def test_save_refuses_what_gpt2_cannot_express(tmp_path, changes, match):
    with pytest.raises(ValueError, match=f"^The 'model' parameter of save_gpt2 must describe a GPT that GPT-2's "
                                         f"format can express .*Got one with {match}"):
        save_gpt2(GPT(GPTConfig.tiny(**changes), generator=0), tmp_path)
    assert not (tmp_path / "config.json").exists()
    with pytest.raises(TypeError, match="'model' parameter of save_gpt2 must be a GPT"):
        save_gpt2(torch.nn.Linear(2, 2), tmp_path)


@pytest.mark.parametrize("changes, match", [(dict(model_type="bert"), "model_type 'bert'"),
                                            (dict(activation_function="silu"), "activation_function 'silu'"),
                                            (dict(tie_word_embeddings=False), "no untied output weights"),
                                            (dict(scale_attn_by_inverse_layer_idx=True), "scale_attn_by_inverse"),
                                            (dict(n_head=5), "'n_heads' parameter of GPTConfig")])
def test_load_refuses_configs_udl_cannot_build(hf_folder, tmp_path, changes, match):
    config, tensors = read_checkpoint(hf_folder)
    write_checkpoint(tmp_path, {**config, **changes}, tensors)
    with pytest.raises(ValueError, match=f"^The 'folder' parameter of load_gpt2 must .*{match}.* instead\\.$"):
        load_gpt2(tmp_path)


def test_load_refuses_missing_untied_and_foreign_tensors(hf_folder, tmp_path):
    config, tensors = read_checkpoint(hf_folder)
    cases = [({k: v for k, v in tensors.items() if "h.1.mlp.c_fc.weight" not in k}, "the tensor 'h.1.mlp.c_fc"),
             ({**tensors, "lm_head.weight": tensors["transformer.wte.weight"] + 1}, "untied output weights"),
             ({**tensors, "transformer.h.0.extra": torch.zeros(2)}, "also \\['h.0.extra'\\]"),
             ({**tensors, "transformer.wpe.weight": torch.zeros(5, 32)}, r"shape \(24, 32\).*Got shape \(5, 32\)")]
    for case, match in cases:
        write_checkpoint(tmp_path, config, case)
        with pytest.raises(ValueError, match=f"^The 'folder' parameter of load_gpt2 must .*{match}"):
            load_gpt2(tmp_path)
    with pytest.raises(TypeError, match="'dtype' parameter of load_gpt2"):
        load_gpt2(hf_folder, dtype=torch.long)
    with pytest.raises(ValueError, match="'folder' parameter of load_gpt2"):
        load_gpt2(tmp_path / "missing")


# --------------------------------------------------------------------------- sizes
@pytest.mark.parametrize("name, layers, d, heads", [("small", 12, 768, 12), ("medium", 24, 1024, 16),
                                                    ("large", 36, 1280, 20), ("xl", 48, 1600, 25)])
def test_parameter_counts_equal_hfs_on_the_meta_device(name, layers, d, heads):
    hf_config = transformers.GPT2Config(n_layer=layers, n_embd=d, n_head=heads)
    with torch.device("meta"):
        hf = transformers.GPT2LMHeadModel(hf_config)
    theirs = sum(p.numel() for p in hf.parameters())  # lm_head tied to wte: counted once
    config = gpt2_config(hf_config.to_dict())
    assert parameter_count(config) == theirs == config.parameter_count()
    assert hf_gpt2_config(config)["n_layer"] == layers


# --------------------------------------------------------------------------- dropout sites
def test_train_mode_equals_hf_with_the_same_seed(hf_folder, tmp_path):
    """Embedding, attention and residual dropout at GPT-2's sites: the same draws give the same logits and gradients."""
    config, tensors = read_checkpoint(hf_folder)
    write_checkpoint(tmp_path, {**config, "embd_pdrop": 0.1, "attn_pdrop": 0.2, "resid_pdrop": 0.3}, tensors)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path, attn_implementation="sdpa").train()
    ours = load_gpt2(tmp_path).train()
    assert (ours.config.p_embedding, ours.config.attention_dropout, ours.config.dropout) == (0.1, 0.2, 0.3)
    tokens = _tokens((2, 10), seed=9)
    torch.manual_seed(123)
    expected = hf(tokens).logits
    torch.manual_seed(123)
    got = ours(tokens)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    torch.manual_seed(124)
    assert (ours(tokens) - got).abs().max() > 1e-2  # dropout is on: other draws, other logits


# --------------------------------------------------------------------------- tokenizer and the book's §12.7 examples
def test_tokenizer_and_the_books_examples_through_a_loaded_model(tmp_path):
    """A byte-level BPE saved both ways loads; a sentence is scored and continued by each decoding strategy."""
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import decoders, models, pre_tokenizers, trainers

    from udl.interop.gpt2 import load_tokenizer

    bpe = tokenizers.Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(["the cat sat on the mat. the dog sat on the log."] * 10,
                            trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    bpe.save(str(tmp_path / "tokenizer.json"))
    old = tmp_path / "old"
    old.mkdir()
    bpe.model.save(str(old))  # GPT-2's original vocab.json + merges.txt
    text = "the cat sat on the log."
    ids = load_tokenizer(tmp_path).encode(text).ids
    assert ids == bpe.encode(text).ids == load_tokenizer(old).encode(text).ids
    assert load_tokenizer(tmp_path).decode(ids) == text
    with pytest.raises(ValueError, match="^The 'folder' parameter of load_tokenizer must hold tokenizer.json"):
        load_tokenizer(old / "missing")

    _hf(seed=4, vocab_size=bpe.get_vocab_size()).save_pretrained(tmp_path)
    model = load_gpt2(tmp_path, dtype=torch.float64).eval()
    sentence = torch.tensor(ids)
    with torch.no_grad():
        hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path).double().eval()
        logp = torch.log_softmax(hf(sentence[None, :-1]).logits[0], -1).gather(-1, sentence[1:, None]).sum()
    torch.testing.assert_close(sequence_log_prob(model, sentence), logp, rtol=0, atol=1e-12)
    prompt = sentence[:3]
    for strategy in ("greedy", "top_k", "nucleus", "beam"):
        out = generate(model, prompt, 5, strategy=strategy, k=5, p=0.9, generator=0)
        assert torch.equal(out[:3], prompt) and len(out) == 8
        assert isinstance(load_tokenizer(tmp_path).decode(out.tolist()), str)
