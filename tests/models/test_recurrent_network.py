"""udl.models.recurrent: the recurrent network over tokens, its sequence loss and the per-step input gradients."""

import pytest
import torch
import torch.nn.functional as F

from udl.models.recurrent import RecurrentNetwork, last_step_cross_entropy, step_gradient_norms
from udl.nn.recurrent import GRU, LSTM, RNN


@pytest.mark.parametrize("kind, cls", [("elman", RNN), ("lstm", LSTM), ("gru", GRU)])
def test_the_network_is_embedding_recurrent_layer_and_head(kind, cls):
    net = RecurrentNetwork(9, 3, 5, 4, kind=kind, n_layers=2, generator=0).double()
    assert isinstance(net.recurrent, cls) and net.recurrent.n_layers == 2
    tokens = torch.tensor([[1, 2, 3, 8], [0, 0, 5, 6]])
    h, _ = net.recurrent(net.embedding.weight[tokens])
    torch.testing.assert_close(net(tokens), h @ net.head.weight.T + net.head.bias, rtol=0, atol=1e-14)


def test_forget_bias_reaches_the_lstm():
    net = RecurrentNetwork(5, 2, 3, 2, forget_bias=2.0, generator=0)
    assert torch.equal(net.recurrent.layers[0].beta_x[3:6], torch.full((3,), 2.0))


def test_last_step_cross_entropy_reads_only_the_last_output():
    outputs = torch.randn(3, 4, 2, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 1])
    torch.testing.assert_close(last_step_cross_entropy(outputs, labels), F.cross_entropy(outputs[:, -1], labels))
    changed = outputs.clone()
    changed[:, :-1] = 100.0
    assert last_step_cross_entropy(changed, labels) == last_step_cross_entropy(outputs, labels)


def test_step_gradient_norms_equal_autograd_per_sequence():
    net = RecurrentNetwork(6, 3, 4, 2, kind="gru", generator=1).double()
    tokens, labels = torch.tensor([[0, 3, 4, 5], [1, 2, 5, 3]]), torch.tensor([0, 1])
    norms = step_gradient_norms(net, tokens, labels)
    want = torch.zeros(4, dtype=torch.float64)
    for i in range(2):  # each sequence's own loss, its own gradient
        x = net.embedding(tokens[i:i + 1]).detach().requires_grad_()
        loss = F.cross_entropy(net.from_embeddings(x)[0][:, -1], labels[i:i + 1])
        (g,) = torch.autograd.grad(loss, x)
        want += g[0].norm(dim=-1) / 2
    torch.testing.assert_close(norms, want, rtol=1e-12, atol=0)
    assert all(p.grad is None for p in net.parameters())  # the parameters' gradients are left alone


def test_an_elman_networks_gradient_to_early_inputs_decays_faster_than_an_lstms():
    tokens = torch.randint(2, 10, (64, 30), generator=torch.Generator().manual_seed(0))
    labels = tokens[:, 0] % 2
    slopes = {}
    for kind in ("elman", "lstm"):
        norms = step_gradient_norms(RecurrentNetwork(10, 8, 32, 2, kind=kind, generator=0), tokens, labels)
        distance = torch.arange(29, -1, -1, dtype=torch.float64)
        log_norm = norms.double().log()
        slopes[kind] = float(torch.cov(torch.stack([distance, log_norm]))[0, 1] / distance.var())  # least squares
    assert slopes["elman"] < slopes["lstm"] < 0  # both forget at initialisation; the Elman network faster
