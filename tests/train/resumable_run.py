"""A small training run with everything exact resumption depends on; a script for test_train_checkpoint.

Adam (optimizer state), StepLR (scheduler state), dropout (the torch RNG) and a
shuffled dataset whose 72 rows make 4 batches of 16 per epoch (the data position).

    python resumable_run.py CHECKPOINT KILL_AT THREADS

trains until step KILL_AT and then SIGKILLs itself, as a preempted job would die.
"""

import os
import signal
import sys

import torch
from torch import nn

from udl.train import fit

STEPS, EVERY = 22, 3


def train(checkpoint_path, *, resume=False, callback=None):
    """Build the seeded problem and fit it; return (model, losses)."""
    torch.manual_seed(0)
    x = torch.randn(72, 4)
    y = x.sum(1, keepdim=True).sin() + 0.1 * torch.randn(72, 1)
    model = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Dropout(0.3), nn.Linear(32, 1))

    losses = fit(model, (x, y), nn.MSELoss(), torch.optim.Adam(model.parameters(), lr=1e-2),
                 scheduler=lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5),
                 steps=STEPS, batch_size=16, seed=7, device="cpu", progress=False, callback=callback,
                 checkpoint_path=checkpoint_path, checkpoint_every=EVERY, resume=resume)
    return model, losses


if __name__ == "__main__":
    path, kill_at, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)  # the same kernels split the same way as in the test process

    def kill(step, loss, model):
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    train(path, callback=kill)
