"""PyTorch weights both ways for every zoo model: torch twin -> (.safetensors, .pt) ->
convprop gives PyTorch's outputs; convprop -> safetensors -> torch twin gives convprop's.
Mismatches are listed in one error; a .pt file holding code is refused and nothing in it
runs."""

import os
import pickle
import sys

import numpy as np
import pytest

from convprop.interop import (StateDictMismatch, load_torch_weights, read_state_dict,
                              save_torch_safetensors)
from convprop.models import MODELS, build

torch = pytest.importorskip("torch", reason="PyTorch not installed: weight tests skipped")
st_torch = pytest.importorskip("safetensors.torch", reason="safetensors not installed")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from twins import torch_zoo  # noqa: E402
from zoo_configs import SMALL  # noqa: E402

ZOO = SMALL


def twin(name, seed=0):
    torch.manual_seed(seed)
    m = torch_zoo.TORCH_MODELS[name](**ZOO[name][0])
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
                mod.weight.copy_(torch.rand(mod.weight.shape, generator=g) + 0.5)
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=g))
                mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=g))
                mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) + 0.5)
                mod.num_batches_tracked.fill_(7)
    return m.eval()


def test_covers_the_zoo():
    assert set(ZOO) == set(MODELS)


@pytest.mark.parametrize("fmt", ["safetensors", "pt"])
@pytest.mark.parametrize("name", sorted(ZOO))
def test_torch_to_convprop(name, fmt, tmp_path, rng):
    tm = twin(name)
    path = tmp_path / f"w.{fmt}"
    if fmt == "pt":
        torch.save(tm.state_dict(), path)
    else:
        st_torch.save_file({k: v.contiguous() for k, v in tm.state_dict().items()}, path)
    cm = build(name, rng=np.random.default_rng(9), **ZOO[name][0])
    load_torch_weights(cm, path)
    cm.astype(np.float64)
    x = rng.normal(size=(2,) + ZOO[name][1])
    np.testing.assert_allclose(cm.predict(x), tm.double()(torch.tensor(x)).detach().numpy(),
                               rtol=1e-9, atol=1e-10)
    bn = [m for m in cm.modules() if hasattr(m, "num_batches_tracked")]
    assert all(int(m.num_batches_tracked) == 7 for m in bn)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_convprop_to_torch(name, tmp_path, rng):
    cm = build(name, rng=np.random.default_rng(3), **ZOO[name][0])
    for m in cm.modules():  # non-trivial statistics
        if hasattr(m, "running_mean"):
            m.set_buffer("running_mean", rng.normal(size=m.running_mean.shape).astype(np.float32))
            m.set_buffer("running_var", rng.uniform(0.5, 2, m.running_var.shape).astype(
                np.float32))
    path = save_torch_safetensors(cm, tmp_path / "w.safetensors")
    tm = torch_zoo.TORCH_MODELS[name](**ZOO[name][0]).eval()
    tm.load_state_dict(st_torch.load_file(path), strict=True)
    x = rng.normal(size=(2,) + ZOO[name][1]).astype(np.float32)
    got = tm(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(got, cm.predict(x), rtol=1e-5, atol=1e-6)


def test_every_mismatch_in_one_error(tmp_path):
    sd = {k: v.numpy() for k, v in twin("lenet5").state_dict().items()}
    sd["0.weight"] = sd["0.weight"][:3]            # shape
    sd["7.bias"] = sd["7.bias"].astype(np.int64)   # dtype
    del sd["9.weight"]                             # missing
    sd["extra.weight"] = np.zeros(2, np.float32)   # unexpected
    model = build("lenet5")
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(StateDictMismatch) as e:
        load_torch_weights(model, sd)
    msg = str(e.value)
    for part in ("missing: 9.weight", "unexpected: extra.weight",
                 "0.weight: file (3, 1, 5, 5), model (6, 1, 5, 5)",
                 "7.bias: file int64, model float32"):
        assert part in msg
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())


def test_name_map_and_wrapper_prefix(tmp_path):
    sd = {f"module.{k}": v.numpy() for k, v in twin("lenet5").state_dict().items()}
    m = build("lenet5")
    load_torch_weights(m, sd)  # DataParallel's "module." prefix is stripped
    renamed = {f"net.{k}": v for k, v in sd.items()}
    load_torch_weights(build("lenet5"), renamed, name_map=lambda k: f"net.module.{k}")
    with pytest.raises(TypeError, match="name_map"):
        load_torch_weights(m, sd, name_map=3)


def test_nested_checkpoint_dict(tmp_path):
    p = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "state_dict": twin("lenet5").state_dict()}, p)
    assert "0.weight" in read_state_dict(p)


class _Payload:
    """Unpickling this would create the marker file (a stand-in for arbitrary code)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("container", ["torch.save", "plain pickle"])
def test_pt_with_code_is_refused_and_nothing_runs(tmp_path, container):
    marker = tmp_path / "marker"
    p = tmp_path / "evil.pt"
    obj = {"0.weight": torch.zeros(2), "x": _Payload(str(marker))}
    if container == "torch.save":
        torch.save(obj, p)
    else:
        p.write_bytes(pickle.dumps(obj))
    assert not marker.exists()
    with pytest.raises(ValueError, match=r"refused by torch.load\(weights_only=True\)"):
        load_torch_weights(build("lenet5"), p)
    assert not marker.exists()


def test_non_tensor_entries_and_unknown_suffix(tmp_path):
    p = tmp_path / "w.pt"
    torch.save({"0.weight": torch.zeros(2), "note": 3}, p)
    with pytest.raises(ValueError, match=r"not tensors: note \(int\)"):
        read_state_dict(p)
    with pytest.raises(ValueError, match="expected a .safetensors, .pt or .pth"):
        read_state_dict(tmp_path / "w.npz")


def test_pt_without_torch_says_how(tmp_path, monkeypatch):
    p = tmp_path / "w.pt"
    torch.save(twin("lenet5").state_dict(), p)
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"needs torch installed.*\.safetensors"):
        read_state_dict(p)


def test_safetensors_needs_no_torch(tmp_path, monkeypatch):
    p = tmp_path / "w.safetensors"
    st_torch.save_file(twin("lenet5").state_dict(), p)
    monkeypatch.setitem(sys.modules, "torch", None)
    load_torch_weights(build("lenet5"), p)


def test_name_map_by_order(rng):
    tm = twin("resnet20")
    sd = {f"net.block{i}.{k.split('.')[-1]}": v.numpy()
          for i, (k, v) in enumerate(tm.state_dict().items())}
    cm = build("resnet20", **ZOO["resnet20"][0])
    load_torch_weights(cm, sd, name_map="order")
    x = rng.normal(size=(2, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(cm.predict(x), tm(torch.tensor(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
    short = dict(list(sd.items())[:-1])
    with pytest.raises(StateDictMismatch, match="pairs entries one to one"):
        load_torch_weights(cm, short, name_map="order")
