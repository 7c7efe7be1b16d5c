"""A deep fully connected autoencoder: unsupervised learning of a compact code (UDL §1.2).

The encoder maps a data vector ``x`` through ReLU hidden layers to a low-dimensional
code ``z``; the decoder mirrors it back to a reconstruction ``x_hat``. Both are fitted
together to minimise the squared reconstruction error, with no labels:

    z = f_enc[x, phi_enc],   x_hat = f_dec[z, phi_dec],
    L[phi] = (1 / (I D)) sum_i || x_i - f_dec[f_enc[x_i]] ||^2           (least squares, UDL §5.3)

With a linear encoder and decoder the best possible code spans the top principal
components, so :func:`pca_reconstruction` is the natural baseline: the deep,
non-linear autoencoder should match or beat it for the same code size.

Example::

    from udl.data.images import load_digits
    x_train, _ = load_digits("train")
    model = Autoencoder(64, hidden=(32, 16), d_code=8, generator=0)
    fit_autoencoder(model, x_train, epochs=200, generator=0)
    z = model.encode(torch.as_tensor(x_train))      # (1438, 8)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from udl.nn.deep import relu_mlp
from udl.nn.init import initialised_from
from udl.validate import as_generator, check_float, check_int, check_tensor


def _widths(value, name: str, owner: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"The '{name}' parameter of {owner} must be a tuple of positive ints. "
                        f"Got {value!r} instead.")
    return tuple(check_int(v, name, owner) for v in value)



class Autoencoder(nn.Module):
    """Deep fully connected autoencoder with a mirrored decoder.

    encoder: ``d_in -> hidden[0] -> ... -> hidden[-1] -> d_code`` (ReLU between layers,
    a linear code); decoder: ``d_code -> hidden[-1] -> ... -> hidden[0] -> d_in``
    (ReLU between layers, a linear output).

    Args:
        d_in: the data dimension D (64 for the 8x8 digits).
        hidden: widths of the encoder's hidden layers, outermost first (default
            ``(32, 16)``); the decoder uses them in reverse.
        d_code: the code (bottleneck) dimension (default 8).
        generator: the random numbers of the initial weights (torch's default
            initialisation, U(-1/√fan_in, 1/√fan_in)): a ``torch.Generator`` or an int
            seed. Default: None, torch's global generator.

    Shape:
        forward / decode output: ``(N, d_in)``; encode output: ``(N, d_code)``; input
        of forward / encode: ``(N, d_in)``.

    Example::

        >>> model = Autoencoder(64, hidden=(32, 16), d_code=8, generator=0)
        >>> model(torch.zeros(5, 64)).shape
        torch.Size([5, 64])
    """

    def __init__(self, d_in: int, hidden: tuple[int, ...] = (32, 16), d_code: int = 8, *,
                 generator: torch.Generator | int | None = None):
        super().__init__()
        self.d_in = check_int(d_in, "d_in", "Autoencoder")
        self.hidden = _widths(hidden, "hidden", "Autoencoder")
        self.d_code = check_int(d_code, "d_code", "Autoencoder")
        generator = as_generator(generator, "Autoencoder")
        widths = (self.d_in, *self.hidden, self.d_code)
        with initialised_from(self, generator):
            self.encoder = relu_mlp(widths)
            self.decoder = relu_mlp(widths[::-1])

    @classmethod
    def tiny(cls, **changes) -> Autoencoder:
        """A test-sized autoencoder, 8 → 6 → 4 → 2 → 4 → 6 → 8; ``changes`` override."""
        return cls(**{**dict(d_in=8, hidden=(6, 4), d_code=2), **changes})

    @property
    def depth(self) -> int:
        """The number of hidden layers: the encoder's, the code, and the decoder's."""
        return 2 * len(self.hidden) + 1

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code ``z = f_enc[x]``: ``(N, d_in) -> (N, d_code)``."""
        check_tensor(x, "x", "Autoencoder.encode", shape=("N", self.d_in))
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The reconstruction ``x_hat = f_dec[z]``: ``(N, d_code) -> (N, d_in)``."""
        check_tensor(z, "z", "Autoencoder.decode", shape=("N", self.d_code))
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode then decode: ``(N, d_in) -> (N, d_in)``."""
        return self.decode(self.encode(x))


def _as_data(x, d_in: int | None, owner: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"The 'x' parameter of {owner} must be a numpy array or torch.Tensor. "
                        f"Got {type(x).__name__} instead.")
    if x.dim() != 2 or x.shape[0] == 0 or (d_in is not None and x.shape[1] != d_in):
        width = d_in if d_in is not None else "D"
        raise ValueError(f"The 'x' parameter of {owner} must have shape (N, {width}) with N > 0. "
                         f"Got {tuple(x.shape)} instead.")
    return x.float()


def fit_autoencoder(model: Autoencoder, x, *, epochs: int = 200, batch_size: int = 64,
                    lr: float = 1e-3, generator: torch.Generator | int = 0) -> list[float]:
    """Fit ``model`` to the rows of ``x`` by minimising the mean squared reconstruction error.

    A plain loop: shuffle with ``generator``, Adam steps on mini-batches,
    ``L = mean((x_hat - x)^2)``. The model trains in place.

    Args:
        model: an :class:`Autoencoder`.
        x: the training data, ``(N, d_in)`` (numpy or torch).
        epochs: passes over the data (default 200).
        batch_size: examples per Adam step (default 64).
        lr: Adam's learning rate (default 1e-3).
        generator: the mini-batch order: a ``torch.Generator`` (continued) or an int
            seed. Default: 0.

    Returns:
        The mean training loss of each epoch (a list of ``epochs`` floats).
    """
    if not isinstance(model, Autoencoder):
        raise TypeError(f"The 'model' parameter of fit_autoencoder must be an Autoencoder. "
                        f"Got {type(model).__name__} instead.")
    x = _as_data(x, model.d_in, "fit_autoencoder")
    epochs = check_int(epochs, "epochs", "fit_autoencoder")
    batch_size = check_int(batch_size, "batch_size", "fit_autoencoder")
    lr = check_float(lr, "lr", "fit_autoencoder", low=0.0, low_open=True)
    generator = as_generator(generator, "fit_autoencoder", optional=False)
    device = next(model.parameters()).device
    x = x.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    history = []
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator, device=generator.device).to(device)
        total = 0.0
        for start in range(0, len(x), batch_size):
            batch = x[order[start:start + batch_size]]
            loss = torch.mean((model(batch) - batch) ** 2)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        history.append(total / len(x))
    model.eval()
    return history


@torch.no_grad()
def reconstruction_error(model: Autoencoder, x) -> float:
    """Mean squared reconstruction error ``mean((f_dec[f_enc[x]] - x)^2)`` over all entries."""
    if not isinstance(model, Autoencoder):
        raise TypeError(f"The 'model' parameter of reconstruction_error must be an Autoencoder. "
                        f"Got {type(model).__name__} instead.")
    x = _as_data(x, model.d_in, "reconstruction_error").to(next(model.parameters()).device)
    return torch.mean((model(x) - x) ** 2).item()


def pca_reconstruction(x_train, x, n_components: int) -> np.ndarray:
    """Project ``x`` on the top ``n_components`` principal components of ``x_train`` and back.

    The optimal *linear* autoencoder with a code of that size (the baseline a deep
    autoencoder should match): with the training mean ``mu`` and the leading right
    singular vectors ``V_k`` of ``x_train - mu``,

        x_hat = mu + (x - mu) V_k V_k^T.

    ``n_components = 0`` gives the mean image for every input.

    Shape:
        x_train: ``(N, D)``; x: ``(M, D)``; output: ``(M, D)``.
    """
    x_train = np.asarray(_as_data(x_train, None, "pca_reconstruction"), dtype=np.float64)
    x = np.asarray(_as_data(x, x_train.shape[1], "pca_reconstruction"), dtype=np.float64)
    n_components = check_int(n_components, "n_components", "pca_reconstruction", minimum=0,
                             maximum=min(x_train.shape))
    mu = x_train.mean(axis=0)
    _, _, vt = np.linalg.svd(x_train - mu, full_matrices=False)  # vt: (min(N, D), D)
    v_k = vt[:n_components].T  # (D, k)
    return mu + (x - mu) @ v_k @ v_k.T  # (M, D) @ (D, k) @ (k, D) -> (M, D)


__all__ = ["Autoencoder", "fit_autoencoder", "reconstruction_error", "pca_reconstruction"]
