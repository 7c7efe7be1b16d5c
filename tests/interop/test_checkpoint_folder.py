"""udl.interop.checkpoint: config.json + safetensors folders, written atomically, read back exactly."""

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from udl.interop.checkpoint import read_checkpoint, write_checkpoint


def test_round_trip_is_exact_and_marked_as_pytorch(tmp_path):
    tensors = {"a.weight": torch.randn(3, 4, dtype=torch.float64), "b": torch.arange(5),
               "c": torch.randn(4, 3).T}  # a non-contiguous view is written contiguous
    config = {"model_type": "gpt2", "n_layer": 2}
    folder = write_checkpoint(tmp_path / "ckpt", config, tensors)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    read_config, read = read_checkpoint(folder)
    assert read_config == config
    assert read.keys() == tensors.keys()
    for name, t in tensors.items():
        assert read[name].dtype == t.dtype and torch.equal(read[name], t)
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        assert f.metadata()["format"] == "pt"  # transformers refuses files without it


def test_sharded_checkpoints_are_read_through_their_index(tmp_path):
    save_file({"x": torch.ones(2)}, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file({"y": torch.zeros(3)}, str(tmp_path / "model-00002-of-00002.safetensors"))
    index = {"metadata": {}, "weight_map": {"x": "model-00001-of-00002.safetensors",
                                            "y": "model-00002-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    (tmp_path / "config.json").write_text("{}")
    _, tensors = read_checkpoint(tmp_path)
    assert torch.equal(tensors["x"], torch.ones(2)) and torch.equal(tensors["y"], torch.zeros(3))


def test_missing_or_broken_folders_are_refused_in_one_line(tmp_path):
    with pytest.raises(ValueError, match="not a folder"):
        read_checkpoint(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="config.json"):
        read_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="pickled .bin weights are not read"):
        read_checkpoint(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="readable safetensors"):
        read_checkpoint(tmp_path)
    with pytest.raises(TypeError, match="must be a path"):
        read_checkpoint(3)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="where files can be written"):
        write_checkpoint(tmp_path / "file", {}, {})
