"""udl.models.classifier.BernoulliClassifier: shapes, initialisation, loss, fitting, arguments."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from udl.data.toy import make_classification_1d
from udl.models.classifier import BernoulliClassifier
from udl.systems import SYSTEMS


def test_shapes_and_parameter_count():
    model = BernoulliClassifier(3, hidden=(16, 8), generator=0)
    x = torch.randn(5, 3)
    assert model(x).shape == (5,)
    assert sum(p.numel() for p in model.parameters()) == (3 * 16 + 16) + (16 * 8 + 8) + (8 * 1 + 1)


def test_prob_is_the_sigmoid_of_the_logit():
    model = BernoulliClassifier(2, generator=1)
    x = torch.randn(7, 2)
    with torch.no_grad():
        torch.testing.assert_close(model.prob(x), torch.sigmoid(model(x)))


def test_logistic_regression_when_no_hidden_layers():
    model = BernoulliClassifier(2, hidden=(), generator=0)
    w, b = model.net[0].weight, model.net[0].bias
    x = torch.randn(4, 2)
    with torch.no_grad():
        torch.testing.assert_close(model(x), x @ w[0] + b[0])


def test_initialisation_is_uniform_in_the_fan_in_bound():
    layer = BernoulliClassifier(1, generator=3).net[2]  # Linear(16, 16)
    assert 0.8 * 16 ** -0.5 < layer.weight.abs().max().item() <= 16 ** -0.5


def test_fit_matches_a_torch_reference_loop():
    data = make_classification_1d(64, seed=0)
    x, y = torch.tensor(data.x, dtype=torch.float32)[:, None], torch.tensor(data.y)
    ours, ref = BernoulliClassifier(1, generator=0), BernoulliClassifier(1, generator=0)
    history = ours.fit(x, y, steps=20, lr=0.01)
    opt = torch.optim.Adam(ref.parameters(), lr=0.01)
    ref_history = []
    for _ in range(20):
        loss = F.binary_cross_entropy_with_logits(ref(x), y.float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        ref_history.append(loss.item())
    np.testing.assert_allclose(history, ref_history, rtol=1e-5, atol=1e-6)
    for pa, pb in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


def test_fit_learns_the_true_probability():
    data = make_classification_1d(300, seed=1)
    x, y = torch.tensor(data.x, dtype=torch.float32)[:, None], torch.tensor(data.y)
    model = BernoulliClassifier(1, generator=1)
    history = model.fit(x, y, steps=500, lr=0.02)
    assert history[-1] < 0.7 * history[0]
    grid = np.linspace(0, 1, 101)
    with torch.no_grad():
        lam = model.prob(torch.tensor(grid, dtype=torch.float32)[:, None]).numpy()
    assert np.abs(lam - data.truth(grid)).mean() < 0.1
    # at the optimum the bias gradient vanishes: mean prediction = fraction of ones
    with torch.no_grad():
        assert abs(model.prob(x).mean().item() - y.float().mean().item()) < 0.02


def test_minibatch_fit_is_seeded():
    x, y = torch.rand(50, 1), (torch.rand(50) < 0.5).long()
    runs = []
    for seed in (0, 0, 1):
        model = BernoulliClassifier(1, generator=0)
        runs.append(model.fit(x, y, steps=10, lr=0.01, batch_size=8, generator=seed))
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_registered_system_builds():
    system = next(s for s in SYSTEMS if s.target == "udl.models.classifier:BernoulliClassifier")
    model = system.build()
    assert isinstance(model, BernoulliClassifier) and model.hidden == (16, 16) and model.d_in == 1


@pytest.mark.parametrize("kwargs", [dict(d_in=0), dict(d_in=1.5), dict(d_in=True), dict(d_in=1, hidden=(16, 0)),
                                    dict(d_in=1, hidden=16), dict(d_in=1, generator=-1), dict(d_in=1, generator="a")])
def test_bad_constructor_arguments(kwargs):
    with pytest.raises((ValueError, TypeError)):
        BernoulliClassifier(**kwargs)


@pytest.mark.parametrize("call", [
    lambda m: m(torch.zeros(3, 2)),
    lambda m: m(np.zeros((3, 1))),
    lambda m: m.fit(torch.zeros(3, 1), torch.tensor([0, 1, 2])),
    lambda m: m.fit(torch.zeros(3, 1), torch.tensor([0, 1])),
    lambda m: m.fit(torch.zeros(3, 1), torch.tensor([0, 1, 1]), steps=0),
    lambda m: m.fit(torch.zeros(3, 1), torch.tensor([0, 1, 1]), lr=-1.0),
    lambda m: m.fit(torch.zeros(3, 1), torch.tensor([0, 1, 1]), batch_size=0),
    lambda m: m.fit(torch.zeros(3, 1), torch.tensor([0, 1, 1]), generator=1.5),
])
def test_bad_call_arguments(call):
    with pytest.raises((ValueError, TypeError)):
        call(BernoulliClassifier(1, generator=0))
