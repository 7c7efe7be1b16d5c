"""Training throughput of udl's GPT against a plain-PyTorch reference GPT, side by side (tokens/s, MFU).

    python benchmarks/gpt_throughput.py                 # GPU: GPT-2 small, bf16, torch.compile, fused AdamW
    python benchmarks/gpt_throughput.py --tiny          # a tiny model, float32, eager (what the tests run)
    python benchmarks/gpt_throughput.py --batch 16 --steps 50 --warmup 10 --rounds 2 [--no-compile]

Both models are built in the same configuration (by default GPT-2 small: 12 layers,
D = 768, 12 heads, context 1,024, the vocabulary padded from 50,257 to 50,304, a
multiple of 64, as nanoGPT does; 124M parameters) and trained on the same batch of
token ids with the same recipe: bf16 autocast, ``torch.compile``, fused AdamW over
``train_gpt``'s parameter groups (weight decay on matrices only, ``udl.train.recipes``).
The reference (``ReferenceGPT`` below) is a minimal nanoGPT-style model: one fused QKV
linear layer, ``F.scaled_dot_product_attention(is_causal=True)``, pre-LN, GELU (tanh),
a head tied to the token embeddings. Before timing, udl's weights are copied into the
reference and the two losses on the batch are compared: equal losses mean the two
compute the same function, so the comparison is of speed alone.

Warm-up steps (compilation included) are not timed; the models alternate for
``--rounds`` rounds and the best round of each is reported. MFU (model FLOPs
utilisation) counts 6N + 12·L·H·Q·T FLOPs per token (N parameters, L layers, H heads
of size Q, context T; forward and backward) against the H100's dense bf16 peak of
989 TFLOP/s (``--peak`` to change). Targets on an H100/H200: udl >= 0.95x the
reference and >= 45% MFU.

Without a GPU (or with ``--tiny``) a tiny configuration runs in float32, eagerly, so
that the script itself is tested on CPU (tests/test_benchmarks.py); its MFU, still
relative to the H100 peak, is not meaningful.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from udl.models.gpt import GPT, GPTConfig, lm_loss
from udl.train.recipes import adamw

H100_BF16_PEAK = 989e12  # dense bf16 FLOP/s of an H100 SXM (an H200 has the same)


# --------------------------------------------------------------------------- the reference
class ReferenceBlock(nn.Module):
    """A pre-LN GPT-2 block written plainly: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, d: int, n_heads: int, d_mlp: int):
        super().__init__()
        self.n_heads = n_heads
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)  # Q, K, V in one matrix
        self.attn_proj = nn.Linear(d, d)
        self.c_fc, self.mlp_proj = nn.Linear(d, d_mlp), nn.Linear(d_mlp, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for t in (q, k, v))  # (B, H, T, Q)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).reshape(B, T, C))  # (B, T, C)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class ReferenceGPT(nn.Module):
    """A minimal nanoGPT-like decoder: embeddings, pre-LN blocks, final LayerNorm, tied head."""

    def __init__(self, c: GPTConfig):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(c.vocab_size, c.d_model), nn.Embedding(c.context, c.d_model)
        self.blocks = nn.ModuleList(ReferenceBlock(c.d_model, c.n_heads, c.d_mlp) for _ in range(c.n_layers))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))  # (B, T, |V|)


@torch.no_grad()
def copy_weights(model: GPT, ref: ReferenceGPT) -> None:
    """Give ``ref`` exactly the weights of udl's ``model``."""
    ref.wte.weight.copy_(model.embed.weight)
    ref.wpe.weight.copy_(model.positions.weight)
    for layer, block in zip(model.layers, ref.blocks):
        a = layer.self_attn
        block.c_attn.weight.copy_(torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]))
        block.c_attn.bias.copy_(torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias]))
        for dst, src in ((block.attn_proj, a.out_proj), (block.c_fc, layer.linear1), (block.mlp_proj, layer.linear2),
                         (block.ln_1, layer.norm1), (block.ln_2, layer.norm2)):
            dst.load_state_dict(src.state_dict())
    ref.ln_f.load_state_dict(model.norm.state_dict())


# --------------------------------------------------------------------------- measuring
def flops_per_token(config: GPTConfig, n_params: int) -> float:
    """6N + 12·L·H·Q·T: the matrix products of the forward and backward pass, attention included."""
    return 6 * n_params + 12 * config.n_layers * config.n_heads * config.d_head * config.context


@dataclass
class Row:
    name: str
    parameters: int
    tokens_per_s: float
    ms_per_step: float
    mfu: float


def _train_steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, *, warmup: int, amp: bool,
                 compile_: bool, fused: bool) -> float:
    """Seconds per optimizer step over ``steps`` timed steps, after ``warmup`` untimed ones."""
    device = x.device
    opt = adamw(model, lr=1e-4, weight_decay=0.1, betas=(0.9, 0.95), fused=fused)  # train_gpt's optimiser
    net = torch.compile(model) if compile_ else model

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = lm_loss(net(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return (time.perf_counter() - start) / steps


def same_loss(config: GPTConfig, batch: int, *, device: str = "cpu", seed: int = 0) -> tuple[float, float]:
    """The loss of udl's GPT and of the reference with udl's weights copied in, on one batch (float32)."""
    model = GPT(config, generator=torch.Generator().manual_seed(seed)).to(device)
    ref = ReferenceGPT(config).to(device)
    copy_weights(model, ref)
    g = torch.Generator().manual_seed(seed + 1)
    tokens = torch.randint(0, config.vocab_size, (batch, config.context + 1), generator=g).to(device)
    with torch.no_grad():
        return (float(lm_loss(model(tokens[:, :-1]), tokens[:, 1:])),
                float(lm_loss(ref(tokens[:, :-1]), tokens[:, 1:])))


def benchmark(config: GPTConfig, *, batch: int, steps: int, warmup: int, rounds: int, device: str, amp: bool,
              compile_: bool, peak: float = H100_BF16_PEAK, seed: int = 0) -> list[Row]:
    """Train udl's GPT and the reference on the same batch, alternating; the best round of each."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, config.vocab_size, (batch, config.context + 1), generator=g).to(device)
    x, y = tokens[:, :-1], tokens[:, 1:]
    fused = device.startswith("cuda")
    best: dict[str, float] = {}
    counts: dict[str, int] = {}
    for _ in range(rounds):
        for name in ("udl", "reference"):
            torch.manual_seed(seed)
            model = GPT(config, generator=torch.Generator().manual_seed(seed)).to(device)
            if name == "reference":
                ref = ReferenceGPT(config).to(device)
                copy_weights(model, ref)
                model = ref
            counts[name] = sum(p.numel() for p in model.parameters())
            seconds = _train_steps(model, x, y, steps, warmup=warmup, amp=amp, compile_=compile_, fused=fused)
            best[name] = min(best.get(name, math.inf), seconds)
            del model
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
    rows = []
    for name in ("udl", "reference"):
        tps = batch * config.context / best[name]
        rows.append(Row(name, counts[name], tps, 1000 * best[name], tps * flops_per_token(config, counts[name]) / peak))
    return rows


def format_table(rows: list[Row], losses: tuple[float, float]) -> str:
    lines = [f"{'model':<10} {'parameters':>12} {'tokens/s':>12} {'ms/step':>9} {'MFU':>7}"]
    for r in rows:
        lines.append(f"{r.name:<10} {r.parameters:>12,} {r.tokens_per_s:>12,.0f} {r.ms_per_step:>9.1f} "
                     f"{100 * r.mfu:>6.3g}%")
    ratio = rows[0].tokens_per_s / rows[1].tokens_per_s
    lines.append(f"udl / reference throughput: {ratio:.3f}")
    lines.append(f"loss with the same weights: udl {losses[0]:.6f}, reference {losses[1]:.6f} "
                 f"(|difference| {abs(losses[0] - losses[1]):.2e})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a tiny model in float32 without compile (CPU test)")
    parser.add_argument("--batch", type=int, default=None, help="sequences per step (default 16; tiny 4)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per round (default 50; tiny 10)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 10; tiny 2)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds alternating the two models (default 2)")
    parser.add_argument("--vocab", type=int, default=50_304, help="vocabulary (default 50,304 = 50,257 padded)")
    parser.add_argument("--no-compile", action="store_true", help="eager mode")
    parser.add_argument("--peak", type=float, default=H100_BF16_PEAK, help="peak FLOP/s for MFU (default H100 bf16)")
    args = parser.parse_args(argv)
    gpu = torch.cuda.is_available()
    tiny = args.tiny or not gpu
    device = "cuda" if gpu and not args.tiny else "cpu"
    if tiny:
        config = GPTConfig(vocab_size=256, context=64, n_layers=2, d_model=64, n_heads=4)
        batch, steps, warmup = args.batch or 4, args.steps or 10, args.warmup if args.warmup is not None else 2
        amp = compile_ = False
    else:
        config = GPTConfig.gpt2_small(vocab_size=args.vocab)
        batch, steps, warmup = args.batch or 16, args.steps or 50, args.warmup if args.warmup is not None else 10
        amp, compile_ = True, not args.no_compile
    losses = same_loss(config, min(batch, 4), device=device)  # in float32, before TF32 is allowed
    if not tiny:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    rows = benchmark(config, batch=batch, steps=steps, warmup=warmup, rounds=args.rounds, device=device, amp=amp,
                     compile_=compile_, peak=args.peak)
    where = (torch.cuda.get_device_name() if device == "cuda" else "CPU") + f", torch {torch.__version__}"
    print(f"{'tiny' if tiny else 'GPT-2 small'} GPT on {where}: batch {batch} x {config.context} tokens, "
          f"{'bf16 autocast' if amp else 'float32'}, {'torch.compile' if compile_ else 'eager'}, "
          f"{steps} timed steps after {warmup}, best of {args.rounds} rounds; MFU vs {args.peak / 1e12:g} TFLOP/s")
    table = format_table(rows, losses)
    print(table)
    return {"rows": rows, "losses": losses, "config": config, "table": table}


if __name__ == "__main__":
    main()
