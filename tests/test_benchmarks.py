"""benchmarks/gpt_throughput.py runs on CPU, and udl's GPT computes what the plain reference computes."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch

from udl.models.gpt import GPT, GPTConfig, lm_loss

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def throughput():
    return _load("gpt_throughput")


def test_the_tiny_benchmark_prints_a_positive_table(throughput, capsys):
    out = throughput.main(["--tiny", "--steps", "2", "--warmup", "1", "--rounds", "1"])
    printed = capsys.readouterr().out
    assert "udl / reference throughput" in printed and "MFU" in printed
    rows = out["rows"]
    assert [r.name for r in rows] == ["udl", "reference"]
    assert rows[0].parameters == rows[1].parameters == sum(GPTConfig(**{
        k: getattr(out["config"], k) for k in ("vocab_size", "context", "n_layers", "d_model", "n_heads")
    }).parameter_formula().values())
    for r in rows:
        assert r.tokens_per_s > 0 and r.ms_per_step > 0 and r.mfu > 0 and math.isfinite(r.mfu)
    udl_loss, ref_loss = out["losses"]
    assert udl_loss == pytest.approx(ref_loss, abs=1e-5)
    assert udl_loss == pytest.approx(math.log(256), abs=0.1)  # GPT-2 init: nearly uniform predictions


def test_reference_with_copied_weights_gives_the_same_logits_and_gradients(throughput):
    config = GPTConfig(vocab_size=50, context=12, n_layers=2, d_model=16, n_heads=4)
    model = GPT(config, generator=torch.Generator().manual_seed(0)).double()
    ref = throughput.ReferenceGPT(config).double()
    throughput.copy_weights(model, ref)
    tokens = torch.randint(0, 50, (3, 13), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(model(tokens[:, :-1]), ref(tokens[:, :-1]), rtol=0, atol=1e-12)
    lm_loss(model(tokens[:, :-1]), tokens[:, 1:]).backward()
    lm_loss(ref(tokens[:, :-1]), tokens[:, 1:]).backward()
    torch.testing.assert_close(model.embed.weight.grad, ref.wte.weight.grad, rtol=0, atol=1e-12)
    a = model.layers[1].self_attn
    torch.testing.assert_close(torch.cat([a.q_proj.weight.grad, a.k_proj.weight.grad, a.v_proj.weight.grad]),
                               ref.blocks[1].c_attn.weight.grad, rtol=0, atol=1e-12)


def test_flops_per_token_is_6n_plus_attention(throughput):
    c = GPTConfig.gpt2_small()
    n = 124_439_808
    assert throughput.flops_per_token(c, n) == 6 * n + 12 * 12 * 12 * 64 * 1024


def test_udl_gpt_compiles_without_graph_breaks():
    """torch.compile sees one graph: no data-dependent Python branches or .item() in the forward pass."""
    import torch._dynamo

    model = GPT(GPTConfig.tiny())
    explained = torch._dynamo.explain(model)(torch.zeros(2, 8, dtype=torch.long))
    assert explained.graph_break_count == 0 and explained.graph_count == 1
