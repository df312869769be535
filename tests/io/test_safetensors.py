import numpy as np
import pytest

from convprop.io import SafetensorsError, load_file, save_file


def test_round_trip_all_dtypes(tmp_path, rng):
    t = {"f32": rng.standard_normal((2, 3)).astype(np.float32),
         "f64": rng.standard_normal(5), "i64": np.arange(7, dtype=np.int64),
         "u8": np.arange(4, dtype=np.uint8).reshape(2, 2), "scalar": np.array(3.5),
         "empty": np.zeros((0, 3), np.float32), "nc": rng.standard_normal((4, 4))[:, ::2]}
    save_file(t, tmp_path / "a.safetensors", {"k": "v"})
    got, meta = load_file(tmp_path / "a.safetensors")
    assert meta == {"k": "v"}
    assert set(got) == set(t)
    for k in t:
        assert got[k].dtype == t[k].dtype and got[k].shape == t[k].shape
        np.testing.assert_array_equal(got[k], t[k])
        assert got[k].flags.writeable


def test_interoperates_with_reference_package(tmp_path, rng):
    st = pytest.importorskip("safetensors.numpy")
    t = {"w": rng.standard_normal((3, 2)).astype(np.float32), "b": np.arange(3.0)}
    save_file(t, tmp_path / "ours.safetensors", {"m": "1"})
    ref = st.load_file(str(tmp_path / "ours.safetensors"))
    for k in t:
        np.testing.assert_array_equal(ref[k], t[k])
    st.save_file(t, str(tmp_path / "theirs.safetensors"), metadata={"m": "2"})
    got, meta = load_file(tmp_path / "theirs.safetensors")
    assert meta == {"m": "2"}
    for k in t:
        np.testing.assert_array_equal(got[k], t[k])


@pytest.mark.parametrize("cut", [3, 20, -1])
def test_truncated_file_is_refused(tmp_path, cut):
    p = tmp_path / "a.safetensors"
    save_file({"x": np.arange(10.0)}, p)
    data = p.read_bytes()
    p.write_bytes(data[:cut])
    with pytest.raises(SafetensorsError, match="safetensors"):
        load_file(p)


def test_garbage_header_is_refused(tmp_path):
    p = tmp_path / "a.safetensors"
    p.write_bytes((12).to_bytes(8, "little") + b"not json!!!!" + b"\0" * 8)
    with pytest.raises(SafetensorsError, match="corrupt header"):
        load_file(p)


def test_unsupported_dtype_and_metadata(tmp_path):
    with pytest.raises(TypeError, match="unsupported dtype"):
        save_file({"c": np.zeros(2, np.complex64)}, tmp_path / "a")
    with pytest.raises(TypeError, match="metadata values must be strings"):
        save_file({"x": np.zeros(2)}, tmp_path / "a", {"n": 3})
    assert not list(tmp_path.iterdir())  # nothing half-written left behind
