"""udl.interop.bert against transformers' BERT: checkpoints both ways, equal logits, equal dropout.

Every transformers model here is built from a small BertConfig with random weights
(never downloaded), perturbed so that no LayerNorm is the identity and no bias is zero.
"""

import warnings

import pytest
import torch

transformers = pytest.importorskip("transformers")

from udl.interop.bert import bert_config_from_hf, hf_config_from_bert, hf_names, load_bert, save_bert  # noqa: E402
from udl.interop.checkpoint import read_checkpoint, write_checkpoint  # noqa: E402
from udl.models.bert import BERT, BertClassifier, BertConfig, MaskedLanguageModel  # noqa: E402

transformers.logging.set_verbosity_error()  # from_pretrained's load reports are checked through loading_info

SMALL = dict(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=24,
             max_position_embeddings=12, type_vocab_size=3, layer_norm_eps=1e-12)


def hf_model(cls, dtype=torch.float32, seed=0, **changes):
    torch.manual_seed(seed)
    model = cls(transformers.BertConfig(**{**SMALL, **changes}))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))  # LayerNorm gains off 1, biases off 0
    return model.to(dtype).eval()


def batch(n=9):
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(1, SMALL["vocab_size"], (3, n), generator=g)
    segments = torch.randint(0, SMALL["type_vocab_size"], (3, n), generator=g)
    mask = torch.ones(3, n, dtype=torch.long)
    mask[0, 6:] = 0  # padding at the end of one row, at the start of another, the third whole
    mask[1, :2] = 0
    return tokens, segments, mask


def quiet_load(folder, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_bert(folder, **kw)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_masked_lm_checkpoint_gives_equal_logits_and_hidden_states(tmp_path, dtype, tol):
    hf = hf_model(transformers.BertForMaskedLM, dtype)
    hf.save_pretrained(tmp_path)
    with pytest.warns(UserWarning, match="has no pooler"):  # BertForMaskedLM has none
        mlm = load_bert(tmp_path)
    assert isinstance(mlm, MaskedLanguageModel) and not mlm.training
    assert mlm.encoder.embed.weight.dtype == dtype
    tokens, segments, mask = batch()
    with torch.no_grad():
        ref = hf(input_ids=tokens, token_type_ids=segments, attention_mask=mask, output_hidden_states=True)
        hidden = mlm.encoder(tokens, segments=segments, padding_mask=mask.bool())
        logits = mlm.head(hidden)
    assert (hidden - ref.hidden_states[-1]).abs().max() < tol
    assert (logits - ref.logits).abs().max() < tol
    assert logits.abs().max() > 0.1  # not trivially equal


def test_bert_model_checkpoint_gives_equal_outputs_and_pooler(tmp_path):
    hf = hf_model(transformers.BertModel, torch.float64)
    hf.save_pretrained(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the pooler is there: nothing to warn about
        bert = load_bert(tmp_path)
    assert type(bert) is BERT and bert.config.n_segments == 3 and bert.config.d_mlp == 24
    tokens, segments, mask = batch()
    with torch.no_grad():
        ref = hf(input_ids=tokens, token_type_ids=segments, attention_mask=mask)
        hidden = bert(tokens, segments=segments, padding_mask=mask.bool())
        assert (hidden - ref.last_hidden_state).abs().max() < 1e-12
        assert (bert.pool(hidden) - ref.pooler_output).abs().max() < 1e-12


def test_pretraining_checkpoint_loads_its_pooler_and_ignores_the_next_sentence_head(tmp_path):
    hf = hf_model(transformers.BertForPreTraining)
    hf.save_pretrained(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NSP head ignored without a warning (documented)
        mlm = load_bert(tmp_path)
    tokens, segments, mask = batch()
    with torch.no_grad():
        ref = hf(input_ids=tokens, token_type_ids=segments, attention_mask=mask, output_hidden_states=True)
        hidden = mlm.encoder(tokens, segments=segments, padding_mask=mask.bool())
        assert (mlm.head(hidden) - ref.prediction_logits).abs().max() < 1e-5
        assert torch.equal(mlm.encoder.pooler.weight, hf.bert.pooler.dense.weight)


def test_pad_tokens_are_masked_by_default_as_an_attention_mask_masks_them(tmp_path):
    """udl masks pad_token_id when given no mask; transformers needs attention_mask = (tokens != pad)."""
    hf = hf_model(transformers.BertModel, torch.float64)
    hf.save_pretrained(tmp_path)
    bert = load_bert(tmp_path)
    assert bert.config.pad_id == hf.config.pad_token_id == 0
    tokens, segments, _ = batch()
    tokens[0, 6:] = 0
    with torch.no_grad():
        ours = bert(tokens, segments=segments)
        masked = hf(input_ids=tokens, token_type_ids=segments, attention_mask=(tokens != 0).long()).last_hidden_state
        unmasked = hf(input_ids=tokens, token_type_ids=segments).last_hidden_state
    assert (ours - masked).abs().max() < 1e-12
    assert (ours[0] - unmasked[0]).abs().max() > 1e-3 and (ours[1:] - unmasked[1:]).abs().max() < 1e-12


def test_old_checkpoint_names_are_read(tmp_path):
    """gamma/beta LayerNorm names, the position_ids buffer, the decoder's weight and bias written out."""
    hf = hf_model(transformers.BertForMaskedLM, torch.float64)
    tensors = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"):
               v.clone() for k, v in hf.state_dict().items()}
    tensors["bert.embeddings.position_ids"] = torch.arange(SMALL["max_position_embeddings"])[None]
    assert "cls.predictions.decoder.weight" in tensors and "cls.predictions.decoder.bias" in tensors
    write_checkpoint(tmp_path, hf.config.to_dict(), tensors)
    mlm = quiet_load(tmp_path)
    tokens, segments, mask = batch()
    with torch.no_grad():
        ref = hf(input_ids=tokens, token_type_ids=segments, attention_mask=mask).logits
        assert (mlm(tokens, segments=segments, padding_mask=mask.bool()) - ref).abs().max() < 1e-12


@pytest.mark.parametrize("head", [True, False])
def test_udl_to_disk_to_transformers_and_back(tmp_path, head):
    bert = BERT(BertConfig.tiny(vocab_size=30, pad_id=None), generator=0)  # no pad id: HF attends to every token
    model = (MaskedLanguageModel(bert, generator=1) if head else bert).double()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in model.parameters():  # LayerNorms off (1, 0), each its own way
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    save_bert(model.eval(), tmp_path)
    cls = transformers.BertForMaskedLM if head else transformers.BertModel
    hf, info = cls.from_pretrained(tmp_path, output_loading_info=True, dtype=torch.float64)
    assert not info["missing_keys"] and not info["mismatched_keys"]
    assert info["unexpected_keys"] == ({"bert.pooler.dense.weight", "bert.pooler.dense.bias"} if head else set())
    tokens = torch.randint(0, 30, (2, 7), generator=torch.Generator().manual_seed(3))
    segments, mask = tokens % 2, torch.ones_like(tokens)
    mask[1, 5:] = 0
    with torch.no_grad():
        ref = hf.eval()(input_ids=tokens, token_type_ids=segments, attention_mask=mask)
        ours = model(tokens, segments=segments, padding_mask=mask.bool())
    assert (ours - (ref.logits if head else ref.last_hidden_state)).abs().max() < 1e-12
    back = load_bert(tmp_path)  # the pooler is written too: the round trip is exact, with no warning
    assert type(back) is type(model) and back.config == model.config
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), model.state_dict().values()))


def test_an_encoder_without_segments_is_written_with_one_zero_row(tmp_path):
    bert = BERT(BertConfig.tiny(n_segments=0), generator=0).eval()
    save_bert(bert, tmp_path)
    hf = transformers.BertModel.from_pretrained(tmp_path).eval()
    tokens = torch.randint(1, 13, (2, 5), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (bert(tokens) - hf(input_ids=tokens).last_hidden_state).abs().max() < 1e-5
    assert load_bert(tmp_path).config.n_segments == 1


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_dropout_in_training_draws_the_same_masks_as_transformers(tmp_path, implementation):
    """Embedding, attention-weight and block-output dropout at the same sites, drawn in the same order."""
    hf = hf_model(transformers.BertForMaskedLM, hidden_dropout_prob=0.3, attention_probs_dropout_prob=0.2,
                  attn_implementation=implementation)
    assert hf.config._attn_implementation == implementation
    hf.save_pretrained(tmp_path)
    mlm = quiet_load(tmp_path).train()
    hf.train()
    assert mlm.config.dropout == 0.3 and mlm.config.attention_dropout == 0.2 and mlm.config.mlp_dropout == 0
    tokens, segments, mask = batch()
    torch.manual_seed(5)
    ref = hf(input_ids=tokens, token_type_ids=segments, attention_mask=mask).logits
    torch.manual_seed(5)
    ours = mlm(tokens, segments=segments, padding_mask=mask.bool())
    torch.manual_seed(6)
    other = mlm(tokens, segments=segments, padding_mask=mask.bool())
    assert (ours - ref).abs().max() < 1e-5
    assert (other - ref).abs().max() > 0.1  # the masks matter: another seed differs


@pytest.mark.parametrize("size", ["base", "large"])
def test_parameter_counts_equal_transformers(size):
    hf_sizes = dict(vocab_size=30522) if size == "base" else \
        dict(vocab_size=30522, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)
    hf_config = transformers.BertConfig(**hf_sizes)
    config = bert_config_from_hf(hf_config.to_dict())
    with torch.device("meta"):
        theirs = transformers.BertModel(hf_config)
        ours = BERT(config)
        mlm = MaskedLanguageModel(ours)
        their_mlm = transformers.BertForPreTraining(hf_config)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ours) == count(theirs) == {"base": 109_482_240, "large": 335_141_888}[size]
    nsp = 2 * config.d_model + 2  # BertForPreTraining's next-sentence head, which udl has not
    assert count(mlm) == count(their_mlm) - nsp == config.parameter_count()


def test_names_cover_every_parameter_once():
    for head in (True, False):
        bert = BERT(BertConfig.tiny(n_layers=3))
        model = MaskedLanguageModel(bert) if head else bert
        names = hf_names(3, head=head)
        assert set(names) == set(model.state_dict()) and len(set(names.values())) == len(names)


def test_configuration_maps_both_ways():
    config = BertConfig.tiny(activation="gelu_tanh", attention_dropout=0.05, dropout=0.1, pad_id=None, eps=1e-6)
    hf = hf_config_from_bert(config, head=False)
    assert hf["hidden_act"] == "gelu_pytorch_tanh" and hf["architectures"] == ["BertModel"]
    assert bert_config_from_hf(hf) == config
    assert bert_config_from_hf({**hf, "hidden_act": "gelu_new"}).activation == "gelu_tanh"
    transformers.BertConfig(**hf)  # transformers accepts it
    old = {k: v for k, v in hf.items() if k != "model_type"}  # an old config.json names only its architecture
    assert bert_config_from_hf(old) == config
    with pytest.raises(ValueError, match="model_type None"):
        bert_config_from_hf({**old, "architectures": ["GPT2LMHeadModel"]})


def test_what_cannot_be_mapped_is_refused_in_one_line(tmp_path):
    hf = hf_config_from_bert(BertConfig.tiny(), head=True)
    for change, match in [({"model_type": "roberta"}, "model_type 'roberta'"),
                          ({"position_embedding_type": "relative_key"}, "absolute"),
                          ({"is_decoder": True}, "encoder"),
                          ({"hidden_act": "silu"}, "hidden_act 'silu'"),
                          ({"num_attention_heads": 3}, "n_heads")]:
        with pytest.raises(ValueError, match=match):
            bert_config_from_hf({**hf, **change})
    with pytest.raises(TypeError, match="must be a dict"):
        bert_config_from_hf("config.json")
    with pytest.raises(ValueError, match="post-LN"):
        save_bert(BERT(BertConfig.tiny(norm_first=True)), tmp_path)
    with pytest.raises(ValueError, match="mlp_dropout=0"):
        save_bert(BERT(BertConfig.tiny(mlp_dropout=0.1)), tmp_path)
    with pytest.raises(ValueError, match="activation 'gelu'"):
        save_bert(MaskedLanguageModel(BERT(BertConfig.tiny(activation="relu"))), tmp_path)
    with pytest.raises(TypeError, match="BERT or a MaskedLanguageModel"):
        save_bert(BertClassifier(BERT(BertConfig.tiny()), 2), tmp_path)
    with pytest.raises(ValueError, match="'dtype' parameter of load_bert"):
        load_bert(tmp_path, dtype=torch.long)
    with pytest.raises(ValueError, match="not a folder"):
        load_bert(tmp_path / "nowhere")


def test_broken_checkpoints_are_refused_naming_the_tensor(tmp_path):
    save_bert(MaskedLanguageModel(BERT(BertConfig.tiny(), generator=0), generator=1), tmp_path)
    config, tensors = read_checkpoint(tmp_path)

    def load(changed_tensors, changed_config=config):
        folder = write_checkpoint(tmp_path / "broken", changed_config, changed_tensors)
        return quiet_load(folder)

    without = {k: v for k, v in tensors.items() if k != "bert.encoder.layer.1.output.dense.weight"}
    with pytest.raises(ValueError, match="without bert.encoder.layer.1.output.dense.weight"):
        load(without)
    with pytest.raises(ValueError, match=r"bert.embeddings.position_embeddings.weight of shape \(8, 16\)"):
        load({**tensors, "bert.embeddings.position_embeddings.weight": torch.zeros(8, 16)})
    untied = {**tensors, "cls.predictions.decoder.weight": torch.zeros(13, 16)}
    with pytest.raises(ValueError, match="untied"):
        load(untied)
    with pytest.raises(ValueError, match="differ"):
        load({**tensors, "cls.predictions.decoder.bias": torch.ones(13)})
    with pytest.raises(ValueError, match="hidden_act 'gelu'"):
        load(tensors, {**config, "hidden_act": "relu"})
    with pytest.warns(UserWarning, match="left out: classifier.weight"):
        load_bert(write_checkpoint(tmp_path / "extra", config, {**tensors, "classifier.weight": torch.zeros(2, 16)}))


def test_dtype_and_generator_of_a_load(tmp_path):
    hf_model(transformers.BertForMaskedLM).save_pretrained(tmp_path)
    a = quiet_load(tmp_path, dtype=torch.float64, generator=0)
    b = quiet_load(tmp_path, generator=0)
    assert a.encoder.embed.weight.dtype == torch.float64 and b.encoder.embed.weight.dtype == torch.float32
    assert torch.equal(a.encoder.pooler.weight.float(), b.encoder.pooler.weight)  # the missing pooler, seeded
    assert a.encoder.pooler.weight.std() > 0.01
