"""udl.train.classifiers: the book's MNIST-1D training recipe (§10.2.7) is plain SGD, checked step by step."""

import numpy as np
import pytest
import torch
from torch import nn

from udl.models.mnist1d_nets import ConvNet1D, ConvNet1DConfig, FullyConnected1D
from udl.train import epoch_order
from udl.train.classifiers import classification_error, train_classifier


def test_classification_error_counts_wrong_argmaxes():
    logits = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 4, (50,), generator=torch.Generator().manual_seed(1))
    expected = float(np.mean(logits.numpy().argmax(1) != y.numpy()))
    model = nn.Identity()
    assert classification_error(model, logits, y) == expected
    assert classification_error(model, logits, y, batch_size=7) == expected  # batching changes nothing


def test_train_classifier_is_plain_sgd_on_the_mean_cross_entropy():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(60, 40, generator=gen), torch.randint(0, 10, (60,), generator=gen)
    net, copy = FullyConnected1D(generator=0), FullyConnected1D(generator=0)
    curves = train_classifier(net, x, y, x[:20], y[:20], steps=8, lr=0.05, batch_size=20, eval_every=4, seed=5,
                              device="cpu")
    # by hand: φ ← φ - α ∂L/∂φ (UDL eq. 6.3) on fit's batches (3 per epoch of 60)
    for step in range(8):
        epoch, b = divmod(step, 3)
        rows = epoch_order(60, epoch, seed=5)[:60].view(3, 20)[b]
        loss = nn.functional.cross_entropy(copy(x[rows]), y[rows])
        grads = torch.autograd.grad(loss, list(copy.parameters()))
        with torch.no_grad():
            for p, g in zip(copy.parameters(), grads):
                p -= 0.05 * g
        assert curves.losses[step] == pytest.approx(loss.item(), rel=1e-5)
    for mine, theirs in zip(net.parameters(), copy.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)
    assert curves.steps.tolist() == [0, 4, 8]
    assert curves.test_error[-1] == classification_error(net, x[:20], y[:20])
    assert curves.train_error[-1] == classification_error(net, x, y)


def test_train_classifier_learns_a_separable_problem():
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (300,), generator=gen)
    x = torch.randn(300, 40, generator=gen) * 0.3
    x[torch.arange(300), 5 + 10 * y] += 3.0  # a bump whose position gives the class
    curves = train_classifier(ConvNet1D(ConvNet1DConfig(n_classes=3), generator=0), x, y, x, y, steps=200, lr=0.1,
                              batch_size=30, eval_every=100, device="cpu")
    assert curves.train_error[0] > 0.4 and curves.train_error[-1] < 0.05


@pytest.mark.parametrize("kwargs, name", [(dict(steps=0), "steps"), (dict(lr=0.0), "lr"),
                                          (dict(batch_size=61), "batch_size"), (dict(eval_every=0), "eval_every"),
                                          (dict(seed=-1), "seed"), (dict(y_train=torch.zeros(59)), "y_train")])
def test_train_classifier_refuses_bad_arguments(kwargs, name):
    x, y = torch.zeros(60, 40), torch.zeros(60, dtype=torch.int64)
    args = dict(model=FullyConnected1D(generator=0), x_train=x, y_train=y, x_test=x, y_test=y, batch_size=20,
                device="cpu")
    with pytest.raises((ValueError, TypeError), match=f"'{name}' parameter of train_classifier"):
        train_classifier(**{**args, **kwargs})
