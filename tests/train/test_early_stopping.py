"""udl.train.early_stopping: the best snapshot is kept and restored exactly."""

import pytest
import torch
from torch import nn

from udl.data.toy import make_regression_1d
from udl.nn.fixed_joints import FixedJointNetwork
from udl.train import fit
from udl.train.early_stopping import EarlyStopping


def toy(seed):
    d = make_regression_1d(seed=seed)
    return torch.tensor(d.x, dtype=torch.float32), torch.tensor(d.y, dtype=torch.float32)


def sum_sq(pred, target):
    return ((pred - target) ** 2).sum()


def test_as_fit_callback_restores_exactly_the_best_snapshot():
    """Training pulls the weight from 0 towards 2; validation prefers 1: best in the middle."""
    x, y = torch.ones(10, 1), 2 * torch.ones(10, 1)
    net = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.zero_()
    stopper = EarlyStopping(lambda m: (m.weight - 1).pow(2).item(), every=20)
    snapshots = {}

    def callback(step, loss, model):
        stopper(step, loss, model)
        if step % 20 == 0:
            snapshots[step] = {k: v.clone() for k, v in model.state_dict().items()}

    losses = fit(net, (x, y), nn.functional.mse_loss, lambda p: torch.optim.SGD(p, lr=0.01), steps=600,
                 batch_size=5, callback=callback, progress=False, device="cpu")
    assert losses[-1] < losses[0]
    assert stopper.steps == list(range(20, 601, 20)) == sorted(snapshots)
    best = min(range(len(stopper.losses)), key=stopper.losses.__getitem__)
    assert stopper.best_step == stopper.steps[best] and stopper.best_loss == stopper.losses[best]
    # w_s = 2(1 - 0.98^s) crosses 1 at s = ln 2 / -ln 0.98 ≈ 34.3: the evaluation at step 40 is closest
    assert stopper.best_step == 40
    assert net.weight.item() > 1.9
    stopper.restore(net)
    for k, v in net.state_dict().items():
        assert torch.equal(v, snapshots[40][k])  # bit for bit
    assert (net.weight - 1).pow(2).item() == stopper.best_loss
    assert net.training  # the callback's evaluations left train mode alone


def test_with_the_fixed_joint_model_on_the_toy_data():
    x, y = toy(0)
    x_val, y_val = toy(1)
    net = FixedJointNetwork(14, generator=torch.Generator().manual_seed(0))
    stopper = EarlyStopping(lambda m: sum_sq(m(x_val), y_val).item(), every=10)
    fit(net, (x, y), sum_sq, lambda p: torch.optim.SGD(p, lr=0.05), steps=300, batch_size=5, callback=stopper,
        progress=False, device="cpu")
    best_val = stopper.best_loss
    stopper.restore(net)
    with torch.no_grad():
        assert sum_sq(net(x_val), y_val).item() == best_val
    assert best_val < stopper.losses[0]


def test_snapshot_is_a_copy_not_a_view():
    net = nn.Linear(2, 1)
    stopper = EarlyStopping(lambda m: 1.0)
    stopper.update(0, net)
    before = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    stopper.restore(net)
    assert torch.equal(net.weight, before)


def test_patience_and_min_delta():
    values = iter([5.0, 4.0, 3.95, 3.99, 3.0, 3.5, 3.6, 3.7, 1.0])
    stopper = EarlyStopping(lambda m: next(values), patience=3, min_delta=0.1)
    net = nn.Linear(1, 1)
    for step in range(1, 10):
        stopper(step, 0.0, net)
    # 3.95 and 3.99 are not better than 4.0 by more than 0.1; 3.0 is; then three misses stop it
    assert stopper.steps == [1, 2, 3, 4, 5, 6, 7, 8] and stopper.losses[-1] == 3.7
    assert stopper.best_step == 5 and stopper.best_loss == 3.0
    assert stopper.should_stop and stopper.stopped_step == 8
    # after stopping, the callback no longer evaluates
    stopper(9, 0.0, net)
    assert len(stopper.steps) == 8


def test_eval_mode_during_evaluation():
    modes = []
    net = nn.Sequential(nn.Dropout(0.5))
    stopper = EarlyStopping(lambda m: modes.append(m.training) or 0.0)
    net.train()
    stopper.update(0, net)
    assert modes == [False] and net.training
    net.eval()
    stopper.update(1, net)
    assert not net.training


def test_bad_arguments():
    with pytest.raises(TypeError, match="'val_fn' parameter of EarlyStopping"):
        EarlyStopping(3)
    with pytest.raises(ValueError, match="'every' parameter"):
        EarlyStopping(lambda m: 0.0, every=0)
    with pytest.raises(ValueError, match="'patience' parameter"):
        EarlyStopping(lambda m: 0.0, patience=0)
    with pytest.raises(ValueError, match="'min_delta' parameter"):
        EarlyStopping(lambda m: 0.0, min_delta=-1.0)
    with pytest.raises(ValueError, match="needs at least one evaluation"):
        EarlyStopping(lambda m: 0.0).restore(nn.Linear(1, 1))
    with pytest.raises(TypeError, match="'model' parameter"):
        EarlyStopping(lambda m: 0.0).update(0, "net")
