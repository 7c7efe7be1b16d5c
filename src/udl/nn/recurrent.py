"""Recurrent networks: the Elman RNN, the LSTM and the GRU, written from their equations (UDL fig. 12.19).

Before transformers, a sequence x_1 ... x_T was read one element at a time by one network
applied at every step (fig. 12.19): it takes the next input x_t and the hidden state
h_{t-1} the previous step handed on, and returns the new hidden state h_t, which is both
this step's output embedding and what the next step receives. The book describes the
idea in its chapter-12 notes and gives no equations; those below are the originals', in
the book's notation (Ω for weights, β for biases, weights acting on column vectors),
and in the order of the rows PyTorch stacks them in.

**Elman network** (Elman 1990), with activation a[•] = tanh or ReLU::

    h_t = a[β_x + Ω_x x_t + β_h + Ω_h h_{t-1}]                                   (R.1)

Back-propagating from h_T to x_1 multiplies T - 1 Jacobians diag(a'[•]) Ω_h, so the
gradient reaching early inputs shrinks (or grows) geometrically with the distance: the
network "forgets" (§11.1's vanishing gradients, along time instead of depth).

**LSTM** (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000)
keeps a second state, the cell c_t, that is changed only by gated addition::

    i_t = σ[β_xi + Ω_xi x_t + β_hi + Ω_hi h_{t-1}]        input gate            (R.2)
    f_t = σ[β_xf + Ω_xf x_t + β_hf + Ω_hf h_{t-1}]        forget gate           (R.3)
    g_t = tanh[β_xg + Ω_xg x_t + β_hg + Ω_hg h_{t-1}]     candidate             (R.4)
    o_t = σ[β_xo + Ω_xo x_t + β_ho + Ω_ho h_{t-1}]        output gate           (R.5)
    c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                                              (R.6)
    h_t = o_t ⊙ tanh[c_t]                                                         (R.7)

∂c_t/∂c_{t-1} = diag(f_t): with the forget gate open, the cell carries information
(and gradients) over many steps unchanged, like a residual connection (§11.2) in time.

**GRU** (Cho et al. 2014) merges the two states and gates an interpolation::

    r_t = σ[β_xr + Ω_xr x_t + β_hr + Ω_hr h_{t-1}]        reset gate            (R.8)
    z_t = σ[β_xz + Ω_xz x_t + β_hz + Ω_hz h_{t-1}]        update gate           (R.9)
    n_t = tanh[β_xn + Ω_xn x_t + r_t ⊙ (β_hn + Ω_hn h_{t-1})]                    (R.10)
    h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}                                        (R.11)

Each cell stores Ω_x ``(G·H, D)``, Ω_h ``(G·H, H)``, β_x and β_h ``(G·H,)`` with the G
gates' rows stacked (LSTM: i, f, g, o; GRU: r, z, n; Elman: G = 1), the layout of
``torch.nn.RNN``, ``LSTM`` and ``GRU``, so weights copy across one to one:
:meth:`RNN.to_torch` and :meth:`RNN.from_torch` (and the cells' own). Every value is
drawn from U(-1/√H, 1/√H), torch's rule, from the ``generator=``.

The sequence modules stack L layers (layer l > 1 reads the hidden states of layer l - 1)
and run the input projections β_x + Ω_x x_t of all steps as one matrix product before the
loop over time, which only computes the recurrent part. Not implemented: dropout between
layers, bidirectional layers, LSTM projections, unbatched (2-D) inputs.
"""

from __future__ import annotations

import torch
from torch import nn

from udl.nn.init import fan_in_uniform_, initialised_from
from udl.validate import (as_generator, check_bool, check_choice, check_float, check_input, check_instance,
                          check_int)

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU"]


# --------------------------------------------------------------------------- cells: one step
class _Cell(nn.Module):
    """One step of a recurrent layer: Ω_x, Ω_h, β_x, β_h with ``n_gates`` blocks of rows (see the module docstring)."""

    n_gates = 1
    kind = ""  # the name of the torch layer: "RNN", "LSTM", "GRU"

    def __init__(self, d_in: int, d_hidden: int, *, bias: bool = True,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        owner = type(self).__name__
        self.d_in = check_int(d_in, "d_in", owner)
        self.d_hidden = check_int(d_hidden, "d_hidden", owner)
        check_bool(bias, "bias", owner)
        generator = as_generator(generator, owner)
        rows = self.n_gates * self.d_hidden
        with initialised_from(self, generator):
            self.omega_x = nn.Parameter(torch.empty(rows, self.d_in))  # Ω_x: (G·H, D)
            self.omega_h = nn.Parameter(torch.empty(rows, self.d_hidden))  # Ω_h: (G·H, H)
            self.beta_x = nn.Parameter(torch.empty(rows)) if bias else None  # β_x: (G·H,)
            self.beta_h = nn.Parameter(torch.empty(rows)) if bias else None  # β_h: (G·H,)

    @property
    def bias(self) -> bool:
        return self.beta_x is not None

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Every weight and bias from U(-1/√H, 1/√H), torch's rule for its recurrent layers."""
        fan_in_uniform_([self.omega_x, self.omega_h, self.beta_x, self.beta_h], self.d_hidden, generator)

    def project_input(self, x: torch.Tensor) -> torch.Tensor:
        """β_x + Ω_x x for any number of leading axes: ``(..., D) -> (..., G·H)``; no dependence on time."""
        return nn.functional.linear(x, self.omega_x, self.beta_x)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        """One step, h_t from x_t and h_{t-1} (zeros by default); the LSTM's state is the pair (h, c)."""
        self._check_x(x)
        if h is None:
            h = self._zeros(x)
        else:
            self._check_state(h, "h", x.shape[0])
        return self.recur(self.project_input(x), h)

    def _project_hidden(self, h: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(h, self.omega_h, self.beta_h)  # β_h + Ω_h h_{t-1}: (B, G·H)

    def _zeros(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], self.d_hidden)

    def _check_x(self, x) -> None:
        if not (isinstance(x, torch.Tensor) and x.dim() == 2 and x.shape[1] == self.d_in
                and x.dtype == self.omega_x.dtype):
            check_input(x, "x", type(self).__name__, shape=("B", self.d_in), dtype=self.omega_x.dtype)

    def _check_state(self, state, name: str, batch: int) -> None:
        if not (isinstance(state, torch.Tensor) and state.shape == (batch, self.d_hidden)
                and state.dtype == self.omega_x.dtype):
            check_input(state, name, type(self).__name__, shape=(batch, self.d_hidden), dtype=self.omega_x.dtype)

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, d_hidden={self.d_hidden}, bias={self.bias}"

    # torch's cells hold the same four tensors under other names
    def to_torch(self) -> nn.Module:
        """The equal ``torch.nn.RNNCell`` / ``LSTMCell`` / ``GRUCell`` holding copies of these weights."""
        ref = getattr(nn, f"{self.kind}Cell")(self.d_in, self.d_hidden, bias=self.bias, **self._torch_options(),
                                             device=self.omega_x.device, dtype=self.omega_x.dtype)
        _copy_into(ref, self, "")
        return ref

    def _torch_options(self) -> dict:
        return {}

    @classmethod
    def from_torch(cls, cell: nn.Module) -> _Cell:
        """A cell holding copies of the weights of the matching ``torch.nn`` cell (same dtype and device)."""
        check_instance(cell, "cell", f"{cls.__name__}.from_torch", getattr(nn, f"{cls.kind}Cell"))
        with torch.device(cell.weight_ih.device):
            ours = cls(cell.input_size, cell.hidden_size, bias=cell.bias, generator=0,  # overwritten below
                       **cls._options_of(cell))
        ours.to(cell.weight_ih.dtype)
        _copy_from(ours, cell, "")
        return ours

    @classmethod
    def _options_of(cls, torch_module: nn.Module) -> dict:
        return {}


class RNNCell(_Cell):
    """One step of an Elman network: ``h_t = a[β_x + Ω_x x_t + β_h + Ω_h h_{t-1}]`` (eq. R.1).

    Args:
        d_in: D, the size of each input x_t.
        d_hidden: H, the size of the hidden state h_t.
        nonlinearity: the activation a[•], ``"tanh"`` (default) or ``"relu"``.
        bias: with β_x and β_h (default True).
        generator: the initial weights' randomness (keyword-only), a ``torch.Generator`` or
            an int seed; every value from U(-1/√H, 1/√H). Default: torch's global generator.

    Shape:
        ``x``: ``(B, D)``, ``h``: ``(B, H)`` (default zeros) -> ``(B, H)``.

    Example::

        >>> cell = RNNCell(3, 4, generator=0)
        >>> cell(torch.zeros(2, 3)).shape
        torch.Size([2, 4])
    """

    kind = "RNN"

    def __init__(self, d_in: int, d_hidden: int, *, nonlinearity: str = "tanh", bias: bool = True,
                 generator: torch.Generator | int | None = None):
        nonlinearity = check_choice(nonlinearity, "nonlinearity", type(self).__name__, ("tanh", "relu"))
        super().__init__(d_in, d_hidden, bias=bias, generator=generator)
        self.nonlinearity = nonlinearity

    def recur(self, x_proj: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """h_t from the projected input β_x + Ω_x x_t ``(B, H)`` and h_{t-1} ``(B, H)`` (eq. R.1)."""
        pre = x_proj + self._project_hidden(h)  # (B, H)
        return torch.tanh(pre) if self.nonlinearity == "tanh" else torch.relu(pre)

    def _torch_options(self) -> dict:
        return {"nonlinearity": self.nonlinearity}

    @classmethod
    def _options_of(cls, torch_module: nn.Module) -> dict:
        return {"nonlinearity": torch_module.nonlinearity}

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"


class LSTMCell(_Cell):
    """One step of a long short-term memory: gates i, f, o, candidate g, cell c and output h (eqs. R.2-R.7).

    Args:
        d_in: D, the size of each input x_t.
        d_hidden: H, the size of h_t and of the cell c_t.
        bias: with β_x and β_h (default True).
        forget_bias: None (default) draws every value as torch does; a number sets the
            forget gate's biases to β_xf = forget_bias, β_hf = 0 after the draw, so that
            f_t starts near σ[forget_bias] and the cell keeps its contents for about
            1/(1 - σ[forget_bias]) steps (Gers et al. 2000; Jozefowicz et al. 2015 use 1).
            Needs ``bias=True``.
        generator: the initial weights' randomness (keyword-only), a ``torch.Generator`` or
            an int seed; every value from U(-1/√H, 1/√H). Default: torch's global generator.

    Shape:
        ``x``: ``(B, D)``, ``state``: ``(h, c)``, each ``(B, H)`` (default zeros) -> ``(h_t, c_t)``.

    Example::

        >>> h, c = LSTMCell(3, 4, generator=0)(torch.zeros(2, 3))
        >>> h.shape, c.shape
        (torch.Size([2, 4]), torch.Size([2, 4]))
    """

    n_gates, kind = 4, "LSTM"

    def __init__(self, d_in: int, d_hidden: int, *, bias: bool = True, forget_bias: float | None = None,
                 generator: torch.Generator | int | None = None):
        if forget_bias is not None:
            forget_bias = check_float(forget_bias, "forget_bias", "LSTMCell")
            if bias is False:
                raise ValueError("The 'forget_bias' parameter of LSTMCell must be None without biases (bias=False). "
                                 f"Got {forget_bias!r} instead.")
        self._forget_bias = forget_bias  # read by reset_parameters, which the constructor runs
        super().__init__(d_in, d_hidden, bias=bias, generator=generator)
        self.forget_bias = forget_bias

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """torch's rule (U(-1/√H, 1/√H) everywhere), then β_xf = forget_bias and β_hf = 0 when it is set."""
        super().reset_parameters(generator)
        forget = slice(self.d_hidden, 2 * self.d_hidden)  # rows of f among i, f, g, o
        if self._forget_bias is not None and not self.beta_x.is_meta:
            self.beta_x[forget] = self._forget_bias
            self.beta_h[forget] = 0.0

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        self._check_x(x)
        if state is None:
            state = (self._zeros(x), self._zeros(x))
        else:
            _check_pair(state, "state", type(self).__name__)
            self._check_state(state[0], "state", x.shape[0])
            self._check_state(state[1], "state", x.shape[0])
        return self.recur(self.project_input(x), state)

    def recur(self, x_proj: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]):
        """``(h_t, c_t)`` from β_x + Ω_x x_t ``(B, 4H)`` and ``(h_{t-1}, c_{t-1})`` (eqs. R.2-R.7)."""
        h, c = state
        i, f, g, o = (x_proj + self._project_hidden(h)).chunk(4, dim=-1)  # 4 x (B, H)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)  # c_t = f ⊙ c_{t-1} + i ⊙ g  (R.6)
        h = torch.sigmoid(o) * torch.tanh(c)  # h_t = o ⊙ tanh[c_t]  (R.7)
        return h, c


class GRUCell(_Cell):
    """One step of a gated recurrent unit: reset gate r, update gate z, candidate n (eqs. R.8-R.11).

    Args:
        d_in: D, the size of each input x_t.
        d_hidden: H, the size of the hidden state h_t.
        bias: with β_x and β_h (default True).
        generator: the initial weights' randomness (keyword-only), a ``torch.Generator`` or
            an int seed; every value from U(-1/√H, 1/√H). Default: torch's global generator.

    Shape:
        ``x``: ``(B, D)``, ``h``: ``(B, H)`` (default zeros) -> ``(B, H)``.

    Example::

        >>> GRUCell(3, 4, generator=0)(torch.zeros(2, 3)).shape
        torch.Size([2, 4])
    """

    n_gates, kind = 3, "GRU"

    def recur(self, x_proj: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """h_t from β_x + Ω_x x_t ``(B, 3H)`` and h_{t-1} ``(B, H)`` (eqs. R.8-R.11)."""
        xr, xz, xn = x_proj.chunk(3, dim=-1)  # 3 x (B, H)
        hr, hz, hn = self._project_hidden(h).chunk(3, dim=-1)  # 3 x (B, H)
        r = torch.sigmoid(xr + hr)  # (R.8)
        z = torch.sigmoid(xz + hz)  # (R.9)
        n = torch.tanh(xn + r * hn)  # the reset gate scales β_hn + Ω_hn h_{t-1}  (R.10)
        return (1 - z) * n + z * h  # (R.11)


def _check_pair(state, name: str, owner: str) -> None:
    if not (isinstance(state, (tuple, list)) and len(state) == 2):
        raise TypeError(f"The {name!r} parameter of {owner} must be a pair of tensors (h, c). "
                        f"Got {type(state).__name__} instead.")


_TORCH_NAMES = {"omega_x": "weight_ih", "omega_h": "weight_hh", "beta_x": "bias_ih", "beta_h": "bias_hh"}


@torch.no_grad()
def _copy_into(ref: nn.Module, cell: _Cell, suffix: str) -> None:
    """Copy ``cell``'s Ω and β into the torch module's ``weight_ih{suffix}``... (suffix "_l0" for layer 0)."""
    for ours, theirs in _TORCH_NAMES.items():
        if getattr(cell, ours) is not None:
            getattr(ref, theirs + suffix).copy_(getattr(cell, ours))


@torch.no_grad()
def _copy_from(cell: _Cell, ref: nn.Module, suffix: str) -> None:
    for ours, theirs in _TORCH_NAMES.items():
        if getattr(cell, ours) is not None:
            getattr(cell, ours).copy_(getattr(ref, theirs + suffix))


# --------------------------------------------------------------------------- layers: whole sequences
class _Recurrent(nn.Module):
    """L stacked cells run over a whole sequence; subclasses say which cell and how a state looks."""

    cell_type: type[_Cell] = _Cell

    def __init__(self, d_in: int, d_hidden: int, n_layers: int = 1, *, bias: bool = True, batch_first: bool = True,
                 generator: torch.Generator | int | None = None, **cell_options):
        super().__init__()
        owner = type(self).__name__
        d_in = check_int(d_in, "d_in", owner)
        d_hidden = check_int(d_hidden, "d_hidden", owner)
        self.n_layers = check_int(n_layers, "n_layers", owner)
        self.batch_first = check_bool(batch_first, "batch_first", owner)
        check_bool(bias, "bias", owner)
        generator = as_generator(generator, owner)
        self.d_in, self.d_hidden = d_in, d_hidden
        with initialised_from(self, generator):  # layer by layer, each cell's own rule
            self.layers = nn.ModuleList(self.cell_type(d_in if l == 0 else d_hidden, d_hidden, bias=bias,
                                                       **cell_options) for l in range(self.n_layers))

    @property
    def bias(self) -> bool:
        return self.layers[0].bias

    def _check_x(self, x) -> None:
        dtype = self.layers[0].omega_x.dtype
        if not (isinstance(x, torch.Tensor) and x.dim() == 3 and x.shape[2] == self.d_in and x.dtype == dtype):
            check_input(x, "x", type(self).__name__, shape=("B", "T", self.d_in) if self.batch_first
                        else ("T", "B", self.d_in), dtype=dtype)

    def _check_state(self, state, name: str, batch: int) -> None:
        shape = (self.n_layers, batch, self.d_hidden)
        dtype = self.layers[0].omega_x.dtype
        if not (isinstance(state, torch.Tensor) and state.shape == shape and state.dtype == dtype):
            check_input(state, name, type(self).__name__, shape=shape, dtype=dtype)

    def _run(self, x: torch.Tensor, initial: list) -> tuple[torch.Tensor, list]:
        """The sequence ``(T, B, D)`` through every layer from the per-layer initial states; time-major inside."""
        finals = []
        for cell, state in zip(self.layers, initial):
            x_proj = cell.project_input(x)  # β_x + Ω_x x_t for every t at once: (T, B, G·H)
            outputs = []
            for t in range(x_proj.shape[0]):  # h_{t-1} feeds step t (fig. 12.19's orange arrows)
                state = cell.recur(x_proj[t], state)
                outputs.append(state[0] if isinstance(state, tuple) else state)
            x = torch.stack(outputs)  # (T, B, H): this layer's outputs, the next layer's inputs
            finals.append(state)
        return x, finals

    def _forward_h(self, x: torch.Tensor, h0: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The forward pass of the layers whose state is h alone (Elman, GRU)."""
        self._check_x(x)
        x = self._time_major(x)  # (T, B, D)
        if h0 is None:
            h0 = x.new_zeros(self.n_layers, x.shape[1], self.d_hidden)
        else:
            self._check_state(h0, "h0", x.shape[1])
        out, finals = self._run(x, list(h0))
        return self._batch_layout(out), torch.stack(finals)  # (B, T, H), (L, B, H)

    def _time_major(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(0, 1) if self.batch_first else x  # (T, B, D)

    def _batch_layout(self, out: torch.Tensor) -> torch.Tensor:
        return out.transpose(0, 1) if self.batch_first else out  # (B, T, H) when batch_first

    def extra_repr(self) -> str:
        return f"d_in={self.d_in}, d_hidden={self.d_hidden}, n_layers={self.n_layers}, batch_first={self.batch_first}"

    def to_torch(self) -> nn.Module:
        """The equal ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` holding copies of these weights (same layout,
        ``batch_first``, dtype and device); layer l's Ω_x is torch's ``weight_ih_l{l}``, and so on.

        Example::

            >>> lstm = LSTM(3, 4, n_layers=2, generator=0)
            >>> x = torch.randn(2, 5, 3)
            >>> torch.allclose(lstm(x)[0], lstm.to_torch()(x)[0], atol=1e-6)
            True
        """
        weight = self.layers[0].omega_x
        ref = getattr(nn, self.cell_type.kind)(self.d_in, self.d_hidden, num_layers=self.n_layers, bias=self.bias,
                                               batch_first=self.batch_first, **self.layers[0]._torch_options(),
                                               device=weight.device, dtype=weight.dtype)
        for l, cell in enumerate(self.layers):
            _copy_into(ref, cell, f"_l{l}")
        return ref

    @classmethod
    def from_torch(cls, module: nn.Module) -> _Recurrent:
        """A copy of a ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` (one direction, no projections, no dropout)."""
        owner = f"{cls.__name__}.from_torch"
        check_instance(module, "module", owner, getattr(nn, cls.cell_type.kind))
        for name, value, wanted in (("bidirectional", module.bidirectional, False),
                                    ("proj_size", getattr(module, "proj_size", 0), 0),
                                    ("dropout", module.dropout, 0)):
            if value != wanted:
                raise ValueError(f"The 'module' parameter of {owner} must have {name}={wanted!r}. "
                                 f"Got {name}={value!r} instead.")
        weight = module.weight_ih_l0
        with torch.device(weight.device):
            ours = cls(module.input_size, module.hidden_size, module.num_layers, bias=module.bias,
                       batch_first=module.batch_first, generator=0,  # overwritten below
                       **cls.cell_type._options_of(module))
        ours.to(weight.dtype)
        for l, cell in enumerate(ours.layers):
            _copy_from(cell, module, f"_l{l}")
        return ours


_SEQUENCE_DOC = """

    Args:
        d_in: D, the size of each input x_t.
        d_hidden: H, the size of every layer's hidden state.
        n_layers: L, stacked layers; layer l > 1 reads layer l - 1's hidden states. Default 1.
        bias: with β_x and β_h (default True).
        batch_first: inputs and outputs are ``(B, T, ·)`` (default True, udl's layout);
            False: ``(T, B, ·)``, torch's default. States are always ``(L, B, H)``.
        generator: the initial weights' randomness (keyword-only), a ``torch.Generator`` or
            an int seed; every value from U(-1/√H, 1/√H). Default: torch's global generator.
"""


class RNN(_Recurrent):
    """An Elman network of L layers run over whole sequences (eq. R.1), equal to ``torch.nn.RNN``.
    """ + _SEQUENCE_DOC + """        nonlinearity: a[•], ``"tanh"`` (default) or ``"relu"``.

    Shape:
        ``x``: ``(B, T, D)`` (batch_first) and ``h0``: ``(L, B, H)`` (default zeros) ->
        ``(output (B, T, H), h_n (L, B, H))``: the last layer's h_t at every step, and every
        layer's h_T.

    Example::

        >>> out, h_n = RNN(3, 4, n_layers=2, generator=0)(torch.zeros(2, 5, 3))
        >>> out.shape, h_n.shape
        (torch.Size([2, 5, 4]), torch.Size([2, 2, 4]))
    """

    cell_type = RNNCell

    def __init__(self, d_in: int, d_hidden: int, n_layers: int = 1, *, nonlinearity: str = "tanh", bias: bool = True,
                 batch_first: bool = True, generator: torch.Generator | int | None = None):
        nonlinearity = check_choice(nonlinearity, "nonlinearity", "RNN", ("tanh", "relu"))
        super().__init__(d_in, d_hidden, n_layers, bias=bias, batch_first=batch_first, generator=generator,
                         nonlinearity=nonlinearity)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self._forward_h(x, h0)



class LSTM(_Recurrent):
    """A long short-term memory of L layers run over whole sequences (eqs. R.2-R.7), equal to ``torch.nn.LSTM``.
    """ + _SEQUENCE_DOC + """        forget_bias: None (default): torch's initial values; a number: every layer's
            β_xf = forget_bias and β_hf = 0 (see :class:`LSTMCell`).

    Shape:
        ``x``: ``(B, T, D)`` (batch_first) and ``state``: ``(h0, c0)``, each ``(L, B, H)``
        (default zeros) -> ``(output (B, T, H), (h_n, c_n))``, ``h_n`` and ``c_n`` ``(L, B, H)``.

    Example::

        >>> out, (h_n, c_n) = LSTM(3, 4, generator=0)(torch.zeros(2, 5, 3))
        >>> out.shape, c_n.shape
        (torch.Size([2, 5, 4]), torch.Size([1, 2, 4]))
    """

    cell_type = LSTMCell

    def __init__(self, d_in: int, d_hidden: int, n_layers: int = 1, *, bias: bool = True, batch_first: bool = True,
                 forget_bias: float | None = None, generator: torch.Generator | int | None = None):
        if forget_bias is not None:
            forget_bias = check_float(forget_bias, "forget_bias", "LSTM")
            if bias is False:
                raise ValueError("The 'forget_bias' parameter of LSTM must be None without biases (bias=False). "
                                 f"Got {forget_bias!r} instead.")
        super().__init__(d_in, d_hidden, n_layers, bias=bias, batch_first=batch_first, generator=generator,
                         forget_bias=forget_bias)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        self._check_x(x)
        x = self._time_major(x)  # (T, B, D)
        if state is None:
            zeros = x.new_zeros(self.n_layers, x.shape[1], self.d_hidden)
            state = (zeros, zeros)
        else:
            _check_pair(state, "state", type(self).__name__)
            self._check_state(state[0], "state", x.shape[1])
            self._check_state(state[1], "state", x.shape[1])
        out, finals = self._run(x, list(zip(state[0], state[1])))
        h_n = torch.stack([h for h, _ in finals])  # (L, B, H)
        c_n = torch.stack([c for _, c in finals])
        return self._batch_layout(out), (h_n, c_n)


class GRU(_Recurrent):
    """A gated recurrent unit of L layers run over whole sequences (eqs. R.8-R.11), equal to ``torch.nn.GRU``.
    """ + _SEQUENCE_DOC + """
    Shape:
        ``x``: ``(B, T, D)`` (batch_first) and ``h0``: ``(L, B, H)`` (default zeros) ->
        ``(output (B, T, H), h_n (L, B, H))``.

    Example::

        >>> out, h_n = GRU(3, 4, generator=0)(torch.zeros(2, 5, 3))
        >>> out.shape, h_n.shape
        (torch.Size([2, 5, 4]), torch.Size([1, 2, 4]))
    """

    cell_type = GRUCell

    def __init__(self, d_in: int, d_hidden: int, n_layers: int = 1, *, bias: bool = True, batch_first: bool = True,
                 generator: torch.Generator | int | None = None):
        super().__init__(d_in, d_hidden, n_layers, bias=bias, batch_first=batch_first, generator=generator)

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self._forward_h(x, h0)
