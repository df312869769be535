"""Downloads against a local HTTP server: good, corrupt and cut-off files; atomic writes."""

import gzip
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import pytest

from convprop.data import DownloadError, default_cache_dir, load_dataset
from convprop.data import download as dl

GOOD = bytes(range(256)) * 40
MD5 = hashlib.md5(GOOD).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    routes: ClassVar[dict] = {}  # path -> (body, announced Content-Length)

    def do_GET(self):
        if self.path not in self.routes:
            self.send_error(404)
            return
        body, length = self.routes[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)  # HTTP/1.0: the connection closes after this, short or not

    def log_message(self, *args):
        pass


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # An http_proxy in the environment must not capture requests to the local server.
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")


@pytest.fixture(scope="module")
def server():
    routes = {
        "/good/f.bin": (GOOD, len(GOOD)),
        "/corrupt/f.bin": (GOOD[:-1] + b"X", len(GOOD)),
        "/cut/f.bin": (GOOD[: len(GOOD) // 2], len(GOOD)),
    }
    handler = type("H", (_Handler,), {"routes": routes})
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", routes
    srv.shutdown()
    srv.server_close()


def _leftovers(d):
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_good_file(server, tmp_path):
    base, _ = server
    p = dl.fetch("f.bin", tmp_path / "c", MD5, [f"{base}/good/"], timeout=5)
    assert p.read_bytes() == GOOD
    assert _leftovers(tmp_path / "c") == ["f.bin"]


def test_corrupt_file_is_deleted(server, tmp_path):
    base, _ = server
    with pytest.raises(DownloadError, match=r"download: .*checksum mismatch.*expected md5 " + MD5):
        dl.fetch("f.bin", tmp_path, MD5, [f"{base}/corrupt"], timeout=5)
    assert _leftovers(tmp_path) == []


def test_cut_off_file_is_deleted(server, tmp_path):
    base, _ = server
    with pytest.raises(DownloadError, match=rf"download: .*cut off: received {len(GOOD) // 2} "):
        dl.fetch("f.bin", tmp_path, MD5, [f"{base}/cut"], timeout=5)
    assert _leftovers(tmp_path) == []


def test_missing_on_server(server, tmp_path):
    base, _ = server
    with pytest.raises(DownloadError, match=r"(?s)download: could not get f.bin.*404.*--data-dir"):
        dl.fetch("f.bin", tmp_path, MD5, [f"{base}/nowhere"], timeout=5)
    assert _leftovers(tmp_path) == []


def test_falls_back_to_next_mirror(server, tmp_path):
    base, _ = server
    p = dl.fetch("f.bin", tmp_path, MD5, [f"{base}/cut", f"{base}/corrupt", f"{base}/good"],
                 timeout=5)
    assert p.read_bytes() == GOOD and _leftovers(tmp_path) == ["f.bin"]


def test_existing_verified_file_is_not_fetched_again(tmp_path):
    (tmp_path / "f.bin").write_bytes(GOOD)
    assert dl.fetch("f.bin", tmp_path, MD5, ["http://127.0.0.1:9/never"]).read_bytes() == GOOD


def test_unknown_names():
    with pytest.raises(ValueError, match=r"download: no download source for 'svhn'"):
        dl.download_files("svhn", ["x"], ".")
    with pytest.raises(ValueError, match=r"download: no checksum known for mnist/x.gz"):
        dl.download_files("mnist", ["x.gz"], ".")


def test_published_checksums_present():
    assert dl.SOURCES["cifar10"]["md5"] == {
        "cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"}
    assert dl.SOURCES["mnist"]["md5"]["train-images-idx3-ubyte.gz"] == \
        "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert dl.SOURCES["fashion-mnist"]["md5"]["t10k-labels-idx1-ubyte.gz"] == \
        "bb300cfdad3c16e7a12a480ee83cd310"


def test_load_dataset_downloads_into_cache(server, tmp_path, monkeypatch, idx_writer):
    base, routes = server
    img, lab, x, y = idx_writer.files(4)
    md5 = {}
    for name, data in zip(idx_writer.names["test"], (img, lab)):
        gz = gzip.compress(data, mtime=0)
        routes[f"/mnist/{name}"] = (gz, len(gz))
        md5[name] = hashlib.md5(gz).hexdigest()
    monkeypatch.setitem(dl.SOURCES, "mnist",
                        {"mirrors": [f"{base}/cut/", f"{base}/mnist/"], "md5": md5})
    ds = load_dataset("mnist", "test", download=True, cache_dir=tmp_path)
    np.testing.assert_array_equal(ds.images[:, 0], x)
    np.testing.assert_array_equal(ds.labels, y)
    assert _leftovers(tmp_path / "mnist") == sorted(idx_writer.names["test"])
    # Second load comes from the cache, with no network at all.
    monkeypatch.setitem(dl.SOURCES, "mnist", {"mirrors": [], "md5": md5})
    again = load_dataset("mnist", "test", download=True, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.images, ds.images)


def test_load_dataset_download_failure_leaves_nothing(server, tmp_path, monkeypatch):
    base, _ = server
    monkeypatch.setitem(dl.SOURCES, "cifar10",
                        {"mirrors": [f"{base}/cut/"], "md5": {"cifar-10-binary.tar.gz": MD5}})
    with pytest.raises(DownloadError, match="cifar-10-binary.tar.gz"):
        load_dataset("cifar10", download=True, cache_dir=tmp_path)
    assert _leftovers(tmp_path / "cifar10") == []


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVPROP_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert default_cache_dir() == tmp_path / "a"
    monkeypatch.delenv("CONVPROP_CACHE")
    assert default_cache_dir() == tmp_path / "x" / "convprop"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "convprop"


def test_cache_dir_env_used_by_load_dataset(monkeypatch, tmp_path, idx_writer):
    monkeypatch.setenv("CONVPROP_CACHE", str(tmp_path))
    x, _ = idx_writer.write(tmp_path / "fashion-mnist", "test", n=3)
    np.testing.assert_array_equal(load_dataset("fashion-mnist", "test").images[:, 0], x)
