"""Tools of the hostile-input suite: an attacker's re-signing of a checkpoint's metadata
(the SHA-256 is no protection: anyone can recompute it), raw safetensors writing, and a
runner for the ``convprop`` command in subprocesses, run concurrently."""

import hashlib
import json
import os
import struct
import subprocess
import sys

import numpy as np

ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def digest(tensors: dict, meta: dict) -> str:
    """The checkpoint's SHA-256, recomputed as an attacker would (from the format's docs)."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k])
        h.update(k.encode() + b"\0" + str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    body = {k: v for k, v in meta.items() if k != "sha256"}
    h.update(b"\0meta\0" + json.dumps(body, sort_keys=True).encode())
    return h.hexdigest()


def read_raw(path):
    """(header dict, data bytes) of a safetensors file, parsed without convprop."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def tensors_of(path) -> dict:
    header, data = read_raw(path)
    dt = {"F32": np.float32, "F64": np.float64, "I64": np.int64}
    out = {}
    for k, v in header.items():
        if k != "__metadata__":
            b, e = v["data_offsets"]
            out[k] = np.frombuffer(data[b:e], dt[v["dtype"]]).reshape(v["shape"]).copy()
    return out


def write_raw(path, header: dict, data: bytes, *, header_text: str | None = None):
    text = (json.dumps(header) if header_text is None else header_text).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


def resign(path, edit_meta=None, edit_tensors=None, *, raw_meta: str | None = None):
    """Rewrite a checkpoint's metadata and/or tensors and recompute its SHA-256: what an
    attacker with the file does. ``raw_meta`` replaces the metadata text verbatim."""
    header, _ = read_raw(path)
    info = json.loads(header["__metadata__"]["convprop"])
    tensors = tensors_of(path)
    if edit_tensors is not None:
        edit_tensors(tensors)
    if edit_meta is not None:
        info = edit_meta(info) or info
    # INF / -INF stand for the literal 1e400 / -1e400 in the text: JSON has no infinity, but
    # a parser reads 1e400 as one
    text = json.dumps(info).replace(f'"{INF}"', "1e400").replace(f'"-{INF}"', "-1e400")
    parsed = json.loads(text)
    if isinstance(parsed, dict):
        parsed["sha256"] = digest(tensors, parsed)
        text = json.dumps(parsed).replace("-Infinity", "-1e400").replace("Infinity", "1e400")
    text = raw_meta if raw_meta is not None else text
    names = {np.dtype(np.float32): "F32", np.dtype(np.float64): "F64",
             np.dtype(np.int64): "I64"}
    new, chunks, off = {}, [], 0
    for k in sorted(tensors):
        raw = np.ascontiguousarray(tensors[k]).tobytes()
        new[k] = {"dtype": names[tensors[k].dtype], "shape": list(tensors[k].shape),
                  "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    new["__metadata__"] = {"convprop": text}
    write_raw(path, new, b"".join(chunks))
    return path


INF = "__1e400__"


def run_cli(*argv, env=None, timeout=60):
    """``python -m convprop ARGV`` in a subprocess: (returncode, stdout, stderr)."""
    r = subprocess.run([sys.executable, "-m", "convprop", *map(str, argv)],
                       capture_output=True, text=True, timeout=timeout,
                       env={**ENV, **(env or {})}, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout, r.stderr


def run_many(cases: dict, timeout=120) -> dict:
    """Run ``{id: (argv, env)}``, each command line in its own process forked from one that
    imported convprop once (tests/hostile/_forkserver.py; the real entry point, without
    paying the import per case): {id: (status, stdout, stderr)}."""
    keys = list(cases)
    payload = json.dumps([[list(map(str, cases[k][0])), cases[k][1] or {}] for k in keys])
    server = os.path.join(os.path.dirname(__file__), "_forkserver.py")
    r = subprocess.run([sys.executable, server], input=payload, capture_output=True,
                       text=True, timeout=timeout, env=ENV)
    assert r.returncode == 0, r.stderr
    return {k: tuple(v) for k, v in zip(keys, json.loads(r.stdout))}


def assert_one_line_error(result, *needles, code=1):
    """Exit status ``code``, no traceback, exactly one line on stderr naming every needle,
    and nothing on stdout that looks like a result (no NaN)."""
    rc, out, err = result
    assert rc == code, (rc, out, err)
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("usage:")
             and not ln.startswith("      ")]
    assert len(lines) == 1, err
    for n in needles:
        assert str(n) in lines[0], (n, lines[0])
    assert "nan" not in out.lower(), out
    return lines[0]
