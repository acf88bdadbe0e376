"""onnxruntime's C API header (``onnxruntime_c_api.h``), which the in-graph kernel operation
(:mod:`runtime.kernels.ort_op`) is compiled against; no onnxruntime Python package ships it.

Where it is looked for, first found wins: ``$TSI_ORT_INCLUDE``; the folder this module's command
fills (``<kernel cache>/onnxruntime-include``); the system's (``/usr/include/onnxruntime``: Debian
13 / Ubuntu's ``libonnxruntime-dev``; ``/usr/local/include/onnxruntime``; the ``include`` folder of
an onnxruntime release archive can be named by the variable).

``python -m runtime.kernels.ort_header`` fetches it from Debian's archive: the headers of
``libonnxruntime-dev`` 1.21.0 (C API version 21, so any onnxruntime from 1.21 on, which keeps
every older API table), checked against the package's SHA-256, unpacked to a temporary folder
beside the target and renamed into place.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from runtime.kernels import cache_dir

__all__ = ["HEADER", "api_version", "fetch", "find"]

HEADER = "onnxruntime_c_api.h"
INCLUDE_ENV = "TSI_ORT_INCLUDE"
SYSTEM_DIRS = (Path("/usr/include/onnxruntime"), Path("/usr/local/include/onnxruntime"))
# Debian 13's libonnxruntime-dev: headers only (the library it names is not needed)
DEB_URL = ("http://deb.debian.org/debian/pool/main/o/onnxruntime/"
           "libonnxruntime-dev_1.21.0+dfsg-1_amd64.deb")
DEB_SHA256 = "14f7d959d5deacbcf1504830d4189f91fc67382b399ed9ae9d3aa9c4050ced08"
DEB_INCLUDE = "usr/include/onnxruntime/"


def fetched_dir() -> Path:
    return cache_dir() / "onnxruntime-include"


def find() -> Path | None:
    """The first folder holding :data:`HEADER` (the module says where it looks), or None."""
    named = os.environ.get(INCLUDE_ENV)
    for folder in ([Path(named)] if named else []) + [fetched_dir(), *SYSTEM_DIRS]:
        if (folder / HEADER).is_file():
            return folder
    return None


def api_version(folder: Path) -> int | None:
    """The header's ``ORT_API_VERSION``, or None if it states none."""
    m = re.search(r"#define\s+ORT_API_VERSION\s+(\d+)", (folder / HEADER).read_text(errors="replace"))
    return int(m.group(1)) if m else None


def _deb_data(deb: bytes) -> bytes:
    """The data.tar.* member of a .deb (an ar archive)."""
    if not deb.startswith(b"!<arch>\n"):
        raise ValueError("not a Debian package (no ar header)")
    pos = 8
    while pos + 60 <= len(deb):
        name, size = deb[pos:pos + 16].decode().strip().rstrip("/"), int(deb[pos + 48:pos + 58])
        if name.startswith("data.tar"):
            return deb[pos + 60:pos + 60 + size]
        pos += 60 + size + (size % 2)
    raise ValueError("the package has no data.tar member")


def _not_a_header_folder(dest: Path) -> str:
    """Why ``dest`` may not be replaced (it exists and is not a folder of these headers), or ""."""
    if dest.exists() and not (dest / HEADER).is_file():
        kind = "folder" if dest.is_dir() else "file"
        return f"{dest} is a {kind} that holds no {HEADER}: name a new folder or one this command filled"
    return ""


def fetch(dest: Path | None = None, url: str | None = None, sha256: str | None = None) -> Path:
    """Downloads the package (default :data:`DEB_URL`), checks its SHA-256 (:data:`DEB_SHA256`) and
    puts its headers in ``dest`` (default :func:`fetched_dir`); returns ``dest``. An existing
    ``dest`` is replaced only by a whole new one, and only if it holds the headers already."""
    dest, url, sha256 = Path(dest or fetched_dir()), url or DEB_URL, sha256 or DEB_SHA256
    refused = _not_a_header_folder(dest)
    if refused:
        raise ValueError(refused)
    with urllib.request.urlopen(url, timeout=60) as r:
        deb = r.read()
    got = hashlib.sha256(deb).hexdigest()
    if got != sha256:
        raise ValueError(f"{url}: SHA-256 {got}, expected {sha256}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(_deb_data(deb))) as tar:
            for m in tar.getmembers():
                name = m.name.removeprefix("./")
                rel = name[len(DEB_INCLUDE):]
                if m.isfile() and name.startswith(DEB_INCLUDE) and rel.endswith(".h") and ".." not in Path(rel).parts:
                    out = tmp / rel
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(tar.extractfile(m).read())
        if not (tmp / HEADER).is_file():
            raise ValueError(f"{url} holds no {HEADER}")
        old = dest.with_name(dest.name + ".old")
        shutil.rmtree(old, ignore_errors=True)  # left by a run stopped between the two renames
        if dest.exists():
            dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m runtime.kernels.ort_header", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help=f"where the headers go (default {fetched_dir()})")
    args = p.parse_args(argv)
    refused = _not_a_header_folder(args.out or fetched_dir())
    if refused:
        p.error(refused)
    try:
        print(fetch(args.out))
    except (OSError, ValueError) as e:
        print(f"error: cannot fetch onnxruntime's headers: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
