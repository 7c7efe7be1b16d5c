"""DDP under torchrun: two gloo processes on 8 rows each take the steps one process takes on 16."""

import os
import runpy
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from udl.train import load_checkpoint

HERE = Path(__file__).parent
script = runpy.run_path(str(HERE / "ddp_run.py"))


def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    # A session of its own, so that a hang can be ended for torchrun and its workers at once.
    launch = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
                               str(HERE / "ddp_run.py"), str(out)], env=env, cwd=tmp_path, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _, stderr = launch.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(launch.pid, signal.SIGKILL)
        launch.communicate()
        pytest.fail("torchrun did not finish within 180 s")
    assert launch.returncode == 0, stderr[-3000:]

    ddp = torch.load(out, weights_only=True)
    assert ddp["world_size"] == 2
    assert ddp["rows"] == [script["GLOBAL_BATCH"] // 2] * script["STEPS"]  # each rank saw 8 of 16 rows

    model, losses, rows = script["train"]()
    assert rows == [script["GLOBAL_BATCH"]] * script["STEPS"]
    for name, value in model.state_dict().items():
        torch.testing.assert_close(ddp["model"][name], value, rtol=0, atol=1e-5)
    torch.testing.assert_close(ddp["losses"], losses, rtol=1e-5, atol=1e-6)  # mean over ranks = global mean
    assert losses[-1] < losses[0]

    checkpoint = load_checkpoint(str(out) + ".ckpt")  # written by rank 0 only
    assert checkpoint["step"] == script["STEPS"]
    assert len(checkpoint["rng"]) == 2  # one RNG state per rank
