"""A recurrent network over tokens: embeddings in, one output per step (UDL fig. 12.19).

Word (token) embeddings x_t pass one by one through the same recurrent layer
(:mod:`udl.nn.recurrent`: Elman, LSTM or GRU); the hidden state h_t goes on to the next
step and through a linear layer to this step's output::

    x_t = e[token_t],    h_t = cell[x_t, h_{t-1}],    y_t = β_o + Ω_o h_t

As a language model, y_t scores the next token; as a classifier (the <cls> token's role
in a transformer encoder), only the last output y_T is used: :func:`last_step_cross_entropy`.
:func:`step_gradient_norms` measures how much the loss depends on each input step,
‖∂L/∂x_t‖, which shrinks with the distance to the output when the network forgets.

Example::

    >>> net = RecurrentNetwork(10, 4, 8, 2, kind="lstm", generator=0)
    >>> net(torch.zeros(3, 5, dtype=torch.long)).shape
    torch.Size([3, 5, 2])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from udl.nn.init import initialised_from
from udl.nn.recurrent import GRU, LSTM, RNN
from udl.validate import as_generator, check_choice, check_float, check_input, check_int, check_tensor

__all__ = ["RecurrentNetwork", "last_step_cross_entropy", "step_gradient_norms"]

KINDS = {"elman": RNN, "lstm": LSTM, "gru": GRU}


class RecurrentNetwork(nn.Module):
    """Token embedding -> L-layer Elman RNN, LSTM or GRU -> a linear output at every step.

    Args:
        vocab_size: |V|, the token ids 0 ... |V| - 1.
        d_embed: D, the size of each token embedding x_t.
        d_hidden: H, the size of the hidden state h_t.
        d_out: the size of each output y_t (classes, or |V| for a language model).
        kind: ``"elman"`` (tanh), ``"lstm"`` or ``"gru"``. Default "lstm".
        n_layers: stacked recurrent layers. Default 1.
        forget_bias: an LSTM's initial forget-gate bias (see :class:`~udl.nn.recurrent.LSTMCell`);
            None (default) for torch's initial values.
        generator: the initial weights' randomness (keyword-only), a ``torch.Generator``
            or an int seed: embeddings N(0, 1), recurrent weights U(-1/√H, 1/√H), the
            output layer torch's linear default. Default: torch's global generator.

    Shape:
        ``tokens``: ``(B, T)`` int64 -> ``(B, T, d_out)``.

    Parameters:
        |V|·D + L_rec + (H + 1)·d_out, with L_rec = G·(D·H + H·H + 2H) for the first layer
        and G·(2H·H + 2H) for each further one (G = 1, 4, 3 for Elman, LSTM, GRU):
        :meth:`parameter_count`.
    """

    def __init__(self, vocab_size: int, d_embed: int, d_hidden: int, d_out: int, *, kind: str = "lstm",
                 n_layers: int = 1, forget_bias: float | None = None, generator: torch.Generator | int | None = None):
        super().__init__()
        owner = "RecurrentNetwork"
        self.vocab_size = check_int(vocab_size, "vocab_size", owner)
        d_embed = check_int(d_embed, "d_embed", owner)
        d_hidden = check_int(d_hidden, "d_hidden", owner)
        d_out = check_int(d_out, "d_out", owner)
        self.kind = check_choice(kind, "kind", owner, tuple(KINDS))
        n_layers = check_int(n_layers, "n_layers", owner)
        if forget_bias is not None and kind != "lstm":
            raise ValueError(f"The 'forget_bias' parameter of {owner} must be None for kind={kind!r} (only an LSTM "
                             f"has a forget gate). Got {forget_bias!r} instead.")
        options = {} if forget_bias is None else {"forget_bias": check_float(forget_bias, "forget_bias", owner)}
        generator = as_generator(generator, owner)
        with initialised_from(self, generator):
            self.embedding = nn.Embedding(self.vocab_size, d_embed)
            self.recurrent = KINDS[kind](d_embed, d_hidden, n_layers, batch_first=True, **options)
            self.head = nn.Linear(d_hidden, d_out)

    @staticmethod
    def parameter_count(vocab_size: int, d_embed: int, d_hidden: int, d_out: int, *, kind: str = "lstm",
                        n_layers: int = 1) -> int:
        """The closed form of the class docstring (no model is built)."""
        gates = KINDS[kind].cell_type.n_gates
        first = gates * (d_embed * d_hidden + d_hidden * d_hidden + 2 * d_hidden)
        later = gates * (2 * d_hidden * d_hidden + 2 * d_hidden)
        return vocab_size * d_embed + first + (n_layers - 1) * later + (d_hidden + 1) * d_out

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """The token embeddings x_t: ``(B, T)`` -> ``(B, T, D)``."""
        if not (isinstance(tokens, torch.Tensor) and tokens.dim() == 2 and tokens.dtype == torch.long):
            check_input(tokens, "tokens", "RecurrentNetwork", shape=("B", "T"), dtype=torch.long)
        return self.embedding(tokens)

    def from_embeddings(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(outputs y (B, T, d_out), hidden states h (B, T, H))`` from the embeddings x ``(B, T, D)``."""
        h, _ = self.recurrent(x)  # (B, T, H): the last layer's h_t at every step
        return self.head(h), h

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.from_embeddings(self.embed(tokens))[0]


def last_step_cross_entropy(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The cross-entropy (UDL eq. 5.24) of the last step's output only: a sequence classifier's loss.

    Shape:
        ``outputs``: ``(B, T, K)``; ``labels``: ``(B,)`` -> scalar.
    """
    return F.cross_entropy(outputs[:, -1], labels)


def step_gradient_norms(model: RecurrentNetwork, tokens: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """How strongly the last step's loss depends on each input step: mean over sequences of ‖∂L_i/∂x_t‖.

    L_i is the cross-entropy of sequence i's last output (:func:`last_step_cross_entropy`
    summed, so each sequence's gradient is its own); x_t the embedding of step t. A
    network that forgets shows norms that fall geometrically with the distance T - t.

    Args:
        model: a :class:`RecurrentNetwork` (any mode; its parameters' gradients are left alone).
        tokens: ``(B, T)`` int64; labels: ``(B,)`` class indices.

    Returns:
        ``(T,)`` float tensor, entry t for input step t (t = T - 1 is the last).
    """
    owner = "step_gradient_norms"
    if not isinstance(model, RecurrentNetwork):
        raise TypeError(f"The 'model' parameter of {owner} must be a RecurrentNetwork. "
                        f"Got {type(model).__name__} instead.")
    check_tensor(tokens, "tokens", owner, ndim=2, dtype=torch.long)
    check_tensor(labels, "labels", owner, shape=(tokens.shape[0],), dtype=torch.long)
    x = model.embed(tokens).detach().requires_grad_()  # (B, T, D): a leaf, so ∂L/∂x_t is kept
    outputs, _ = model.from_embeddings(x)
    loss = F.cross_entropy(outputs[:, -1], labels, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)  # (B, T, D)
    return grad.norm(dim=-1).mean(0).detach()  # (T,)
