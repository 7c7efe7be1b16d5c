import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA

from udl.data.images import load_digits
from udl.models.autoencoder import Autoencoder, fit_autoencoder, pca_reconstruction, reconstruction_error


def linears(module):
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]


def test_architecture_is_deep_and_mirrored():
    model = Autoencoder(64, hidden=(32, 16), d_code=8, generator=0)
    shapes = [tuple(m.weight.shape) for m in linears(model)]
    assert shapes == [(32, 64), (16, 32), (8, 16), (16, 8), (32, 16), (64, 32)]
    assert model.depth == len(shapes) - 1 == 5  # hidden layers: 32, 16, the code, 16, 32
    assert sum(p.numel() for p in model.parameters()) == (64 * 32 + 32 + 32 * 16 + 16 + 16 * 8 + 8) \
        + (8 * 16 + 16 + 16 * 32 + 32 + 32 * 64 + 64)
    x = torch.rand(5, 64)
    assert model.encode(x).shape == (5, 8) and model(x).shape == (5, 64)
    assert model.decode(torch.zeros(3, 8)).shape == (3, 64)


def test_forward_matches_hand_computation_with_torch_ops():
    model = Autoencoder(10, hidden=(7, 5), d_code=3, generator=1)
    x = torch.randn(4, 10, generator=torch.Generator().manual_seed(0))
    (w1, b1), (w2, b2), (w3, b3), (w4, b4), (w5, b5), (w6, b6) = [(m.weight, m.bias) for m in linears(model)]
    z = F.linear(torch.relu(F.linear(torch.relu(F.linear(x, w1, b1)), w2, b2)), w3, b3)  # linear code
    x_hat = F.linear(torch.relu(F.linear(torch.relu(F.linear(z, w4, b4)), w5, b5)), w6, b6)  # linear output
    torch.testing.assert_close(model.encode(x), z)
    torch.testing.assert_close(model(x), x_hat)


def test_pca_reconstruction_matches_sklearn():
    x_train, _ = load_digits("train", seed=0)
    x_test, _ = load_digits("test", seed=0)
    pca = PCA(n_components=8, svd_solver="full").fit(x_train.astype(np.float64))
    reference = pca.inverse_transform(pca.transform(x_test.astype(np.float64)))
    np.testing.assert_allclose(pca_reconstruction(x_train, x_test, 8), reference, atol=1e-6)
    np.testing.assert_allclose(pca_reconstruction(x_train, x_test, 0),
                               np.broadcast_to(x_train.mean(0), x_test.shape), atol=1e-6)


def test_fit_is_deterministic_and_decreases_the_loss():
    x_train, _ = load_digits("train", seed=0)
    histories = []
    for _ in range(2):
        model = Autoencoder(64, generator=0)
        histories.append(fit_autoencoder(model, x_train[:256], epochs=5, batch_size=64, lr=5e-3, generator=0))
    assert histories[0] == histories[1]
    assert len(histories[0]) == 5 and histories[0][-1] < 0.5 * histories[0][0]


def test_held_out_error_beats_mean_image_and_matches_pca():
    # measured (seed 0): autoencoder 0.0235, PCA(8) 0.0238, mean image 0.0727
    x_train, _ = load_digits("train", seed=0)
    x_test, _ = load_digits("test", seed=0)
    model = Autoencoder(64, hidden=(32, 16), d_code=8, generator=0)
    fit_autoencoder(model, x_train, epochs=100, batch_size=128, lr=5e-3, generator=0)
    ae = reconstruction_error(model, x_test)
    mean = float(np.mean((pca_reconstruction(x_train, x_test, 0) - x_test) ** 2))
    pca = float(np.mean((pca_reconstruction(x_train, x_test, 8) - x_test) ** 2))
    assert ae < mean / 2.5
    assert ae < 1.3 * pca


@pytest.mark.parametrize("kwargs, error", [
    (dict(d_in=0), ValueError), (dict(d_in=64, d_code=-1), ValueError), (dict(d_in=64, hidden=(32, 0)), ValueError),
    (dict(d_in=64, hidden=32), TypeError), (dict(d_in=2.5), TypeError), (dict(d_in=64, generator=-1), ValueError)])
def test_constructor_validation(kwargs, error):
    with pytest.raises(error):
        Autoencoder(**kwargs)


def test_function_validation():
    model = Autoencoder(4, hidden=(3,), d_code=2)
    x = np.zeros((5, 4), dtype=np.float32)
    with pytest.raises(ValueError):
        model(torch.zeros(5, 3))
    with pytest.raises(TypeError):
        model.encode(np.zeros((5, 4)))
    with pytest.raises(TypeError):
        fit_autoencoder(torch.nn.Linear(4, 4), x)
    with pytest.raises(ValueError):
        fit_autoencoder(model, np.zeros((5, 3)))
    for bad in (dict(epochs=0), dict(batch_size=-1), dict(lr=0.0), dict(generator=-2)):
        with pytest.raises(ValueError):
            fit_autoencoder(model, x, **bad)
    with pytest.raises(ValueError):
        pca_reconstruction(x, x, 9)
    with pytest.raises(TypeError):
        reconstruction_error(model, "x")
