"""Cache directory and checksum-verified, atomic downloads (urllib only).

A download goes to a temporary file in the destination directory, its MD5 is checked while it
streams, and only a complete, verified file is moved into place with ``os.replace``: a file that
exists under its final name has been verified, and a partial or corrupt download never remains.
The mirrors and checksums live in :data:`SOURCES` so tests (and users behind a proxy mirror)
can point them elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from ..io.atomic import atomic_open
from ..progress import Progress

__all__ = ["SOURCES", "DownloadError", "default_cache_dir", "download_files", "fetch"]

_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
_FASHION_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}

#: name -> {"mirrors": URL bases tried in order, "md5": {file name: published MD5}}.
SOURCES: dict[str, dict] = {
    "mnist": {
        "mirrors": ["https://ossci-datasets.s3.amazonaws.com/mnist/",
                    "http://yann.lecun.com/exdb/mnist/"],
        "md5": _MNIST_MD5,
    },
    "fashion-mnist": {
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        "md5": _FASHION_MD5,
    },
    "cifar10": {
        "mirrors": ["https://www.cs.toronto.edu/~kriz/"],
        "md5": {"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"},
    },
}

_CHUNK = 1 << 20


class DownloadError(OSError):
    """No mirror delivered a complete file with the expected checksum."""


def default_cache_dir(cache_dir=None) -> Path:
    """The cache root: ``cache_dir``, else ``$CONVPROP_CACHE``, else ``$XDG_CACHE_HOME/convprop``,
    else ``~/.cache/convprop``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("CONVPROP_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "convprop"


def _fetch_one(url: str, dest: Path, md5: str, timeout: float) -> None:
    """Stream ``url`` into a temp file beside ``dest``, verify size and MD5, then rename it
    into place durably (:func:`convprop.io.atomic_open`); on any failure nothing is left."""
    digest = hashlib.md5()
    received = 0
    with atomic_open(dest, "wb", suffix=".part") as out, \
            urllib.request.urlopen(url, timeout=timeout) as resp:
        expected_len = resp.headers.get("Content-Length")
        bar = Progress(int(expected_len or 0) or None, f"download {dest.name}", unit="B")
        try:
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        finally:
            bar.close()
        # http.client returns a short body silently when the connection drops early.
        if expected_len is not None and received != int(expected_len):
            raise DownloadError(f"download: {url} was cut off: received {received} bytes, "
                                f"the server announced {int(expected_len)}")
        got = digest.hexdigest()
        if got != md5.lower():
            raise DownloadError(f"download: checksum mismatch for {url}: expected md5 {md5}, "
                                f"got {got} ({received} bytes)")


def fetch(filename: str, dest_dir, md5: str, mirrors, *, timeout: float = 60.0) -> Path:
    """Download ``filename`` from the first mirror that delivers it with MD5 ``md5``.

    Args:
        filename: the file name appended to each mirror's URL base.
        dest_dir: directory the verified file is written to (created if missing).
        md5: the expected hex MD5 of the whole file.
        mirrors: URL bases, tried in order.
    Returns:
        the path of the verified file. An existing file of that name is trusted and kept,
        because only verified downloads are ever renamed into place.
    Raises:
        DownloadError: listing every mirror's failure.
    """
    dest_dir = Path(dest_dir)
    dest = dest_dir / filename
    if dest.is_file():
        return dest
    if not mirrors:
        raise DownloadError(f"download: no mirror configured for {filename}")
    dest_dir.mkdir(parents=True, exist_ok=True)
    failures = []
    for base in mirrors:
        url = base if base.endswith(filename) else base.rstrip("/") + "/" + filename
        try:
            _fetch_one(url, dest, md5, timeout)
            return dest
        except (urllib.error.URLError, OSError, ValueError) as exc:
            # HTTPError, timeouts and DownloadError are all OSError subclasses.
            failures.append(f"  {url}: {exc}")
    raise DownloadError(f"download: could not get {filename} into {dest_dir}:\n"
                        + "\n".join(failures)
                        + "\nDownload it by hand and pass its directory as root= (--data-dir).")


def download_files(name: str, filenames, dest_dir, *, timeout: float = 60.0) -> list[Path]:
    """Fetch each of ``filenames`` for data set ``name`` using :data:`SOURCES`."""
    if name not in SOURCES:
        raise ValueError(f"download: no download source for {name!r}; "
                         f"expected one of {sorted(SOURCES)}")
    src = SOURCES[name]
    paths = []
    for fn in filenames:
        if fn not in src["md5"]:
            raise ValueError(f"download: no checksum known for {name}/{fn}; "
                             f"expected one of {sorted(src['md5'])}")
        paths.append(fetch(fn, dest_dir, src["md5"][fn], src["mirrors"], timeout=timeout))
    return paths
