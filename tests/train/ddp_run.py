"""A small regression fitted with SGD; a script for test_train_ddp, launched by torchrun.

    torchrun --nproc_per_node=2 --standalone ddp_run.py OUT

Rank 0 saves the final weights, the losses and the batch sizes it saw to OUT, and
the loop's checkpoint to OUT.ckpt.
"""

import sys

import torch
from torch import nn

from udl.train import distributed, fit

GLOBAL_BATCH, STEPS = 16, 12


def train(checkpoint_path=None):
    """Build the seeded problem and fit it; return (model, losses, rows seen per forward)."""
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.1 * torch.randn(64, 1)
    model = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1))
    rows = []
    model.register_forward_pre_hook(lambda module, args: rows.append(len(args[0])))
    losses = fit(model, (x, y), nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1),
                 steps=STEPS, batch_size=GLOBAL_BATCH, seed=1, device="cpu", progress=False,
                 checkpoint_path=checkpoint_path)
    return model, losses, rows


if __name__ == "__main__":
    out = sys.argv[1]
    model, losses, rows = train(checkpoint_path=out + ".ckpt")
    if distributed.is_main():
        torch.save({"world_size": distributed.world_size(), "model": model.state_dict(),
                    "losses": losses, "rows": rows}, out)
    distributed.cleanup()
