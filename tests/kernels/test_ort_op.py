"""onnxruntime's C API header (runtime.kernels.ort_header: where it is looked for, fetching it from
a Debian package) and the kernel's onnxruntime operation built against it (runtime.kernels.ort_op):
its refusals, and the operation itself on a one-node graph, where the header is here."""

from __future__ import annotations

import hashlib
import io
import tarfile

import numpy as np
import pytest

from runtime.kernels import cpu_attention, ort_header, ort_op


def deb(files: dict[str, bytes]) -> bytes:
    """A Debian package (an ar archive) whose data.tar.xz holds ``files``."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    out = b"!<arch>\n"
    for name, body in (("debian-binary", b"2.0\n"), ("control.tar.xz", b""), ("data.tar.xz", data.getvalue())):
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{644:<8}{len(body):<10}`\n".encode() + body + (b"\n" if len(body) % 2 else b"")
    return out


HEADER_TEXT = b"#define ORT_API_VERSION 21\n"


@pytest.fixture
def package(tmp_path):
    body = deb({"usr/include/onnxruntime/onnxruntime_c_api.h": HEADER_TEXT,
                "usr/include/onnxruntime/core/providers/resource.h": b"// resource\n",
                "usr/lib/x86_64-linux-gnu/pkgconfig/libonnxruntime.pc": b"not a header\n"})
    path = tmp_path / "dev.deb"
    path.write_bytes(body)
    return path.as_uri(), hashlib.sha256(body).hexdigest()


def test_fetch_unpacks_the_headers_only_and_replaces_a_folder_whole(package, tmp_path):
    url, sha = package
    dest = tmp_path / "include"
    dest.mkdir()
    (dest / "stale.h").write_text("old")
    (dest / ort_header.HEADER).write_bytes(b"#define ORT_API_VERSION 17\n")  # a folder an earlier fetch filled
    assert ort_header.fetch(dest, url, sha) == dest
    assert (dest / ort_header.HEADER).read_bytes() == HEADER_TEXT
    assert (dest / "core" / "providers" / "resource.h").is_file() and not (dest / "stale.h").exists()
    assert not list(dest.rglob("*.pc")) and sorted(p.name for p in tmp_path.iterdir()) == ["dev.deb", "include"]
    assert ort_header.api_version(dest) == 21


def test_fetch_refuses_a_package_whose_digest_differs_and_keeps_what_was_there(package, tmp_path):
    url, _ = package
    dest = tmp_path / "include"
    dest.mkdir()
    (dest / ort_header.HEADER).write_bytes(b"#define ORT_API_VERSION 17\n")
    with pytest.raises(ValueError, match="SHA-256"):
        ort_header.fetch(dest, url, "0" * 64)
    assert ort_header.api_version(dest) == 17 and sorted(p.name for p in tmp_path.iterdir()) == ["dev.deb", "include"]


def test_fetch_refuses_what_is_not_a_package(tmp_path):
    junk = tmp_path / "junk.deb"
    junk.write_bytes(b"<html>not found</html>")
    with pytest.raises(ValueError, match="not a Debian package"):
        ort_header.fetch(tmp_path / "include", junk.as_uri(), hashlib.sha256(junk.read_bytes()).hexdigest())
    assert not (tmp_path / "include").exists()


def test_the_command_says_in_one_line_why_it_could_not_fetch(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(ort_header, "DEB_URL", (tmp_path / "missing.deb").as_uri())
    assert ort_header.main(["--out", str(tmp_path / "include")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot fetch onnxruntime's headers:") and err.count("\n") == 1


def test_the_named_folder_comes_first(monkeypatch, tmp_path):
    (tmp_path / ort_header.HEADER).write_bytes(HEADER_TEXT)
    monkeypatch.setenv(ort_header.INCLUDE_ENV, str(tmp_path))
    assert ort_header.find() == tmp_path
    monkeypatch.setenv(ort_header.INCLUDE_ENV, str(tmp_path / "nowhere"))
    assert ort_header.find() != tmp_path


@pytest.fixture
def fresh_build(monkeypatch):
    ort_op._built.cache_clear()
    yield
    ort_op._built.cache_clear()


def test_without_the_header_the_operation_says_how_to_get_it(monkeypatch, fresh_build):
    monkeypatch.setattr(ort_header, "find", lambda: None)
    assert not ort_op.available()
    assert "python -m runtime.kernels.ort_header" in ort_op.unavailable_reason()
    with pytest.raises(cpu_attention.KernelError, match="onnxruntime kernel operation is unavailable"):
        ort_op.path()


def test_a_header_newer_than_onnxruntime_is_refused(monkeypatch, tmp_path, fresh_build):
    if not cpu_attention.available():
        pytest.skip(f"no CPU attention kernel: {cpu_attention.unavailable_reason()}")
    (tmp_path / ort_header.HEADER).write_text("#define ORT_API_VERSION 999\n")
    monkeypatch.setattr(ort_header, "find", lambda: tmp_path)
    assert not ort_op.available() and "C API version 999, newer than onnxruntime's" in ort_op.unavailable_reason()


needs_op = pytest.mark.skipif(not ort_op.available(), reason=f"no onnxruntime kernel operation: {ort_op.unavailable_reason()}")


def one_node_session(shapes):
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from runtime.backends.onnxruntime_backend import session_options

    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in zip(("q", "kt", "v"), shapes)]
    node = helper.make_node(ort_op.names()[1], ["q", "kt", "v"], ["o"], domain=ort_op.names()[0])
    model = helper.make_model(helper.make_graph([node], "g", ins, [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)]),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ort_op.names()[0], 1)])
    options = session_options(1)
    options.register_custom_ops_library(str(ort_op.path()))
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


@needs_op
def test_the_operation_is_the_kernel_on_k_transposed():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, n, 4)).astype(np.float32) for n in (40, 70, 70))
    session = one_node_session([q.shape, (2, 4, 70), v.shape])
    (got,) = session.run(None, {"q": q, "kt": np.ascontiguousarray(k.transpose(0, 2, 1)), "v": v})
    np.testing.assert_array_equal(got, cpu_attention.saliency_attention(q, k, v, 1.0))
    (again,) = one_node_session([q.shape, (2, 4, 70), v.shape]).run(None, {"q": q, "kt": k.transpose(0, 2, 1).copy(), "v": v})
    np.testing.assert_array_equal(again, got)  # a second session registers the library again


@needs_op
def test_the_operation_refuses_mismatched_tensors_in_one_line():
    session = one_node_session([(2, 40, 4), (2, 4, 70), (2, 60, 4)])
    rng = np.random.default_rng(1)
    feed = {"q": rng.standard_normal((2, 40, 4)).astype(np.float32),
            "kt": rng.standard_normal((2, 4, 70)).astype(np.float32),
            "v": rng.standard_normal((2, 60, 4)).astype(np.float32)}
    with pytest.raises(Exception, match="do not match") as e:
        session.run(None, feed)
    assert "\n" not in str(e.value).strip()


def test_fetch_replaces_what_a_stopped_run_left_beside_the_folder(package, tmp_path):
    """A run stopped between its two renames leaves ``<dest>.old``: the next fetch still puts the
    headers in place and clears it."""
    url, sha = package
    dest = tmp_path / "include"
    dest.mkdir()
    (dest / ort_header.HEADER).write_bytes(HEADER_TEXT)
    (tmp_path / "include.old").mkdir()
    (tmp_path / "include.old" / "stale.h").write_text("old")
    assert ort_header.fetch(dest, url, sha) == dest and (dest / ort_header.HEADER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.deb", "include"]


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_what_is_not_a_header_folder_is_never_replaced(package, tmp_path, capsys, kind):
    """An --out that exists and holds no onnxruntime_c_api.h (a user's file or folder) is refused in
    one line, exit 2, before any download, and is left as it was."""
    url, sha = package
    dest = tmp_path / "mine"
    if kind == "file":
        dest.write_text("notes")
    else:
        dest.mkdir()
        (dest / "notes.txt").write_text("notes")
    with pytest.raises(ValueError, match="holds no onnxruntime_c_api.h"):
        ort_header.fetch(dest, url, sha)
    with pytest.raises(SystemExit) as e:
        ort_header.main(["--out", str(dest)])
    assert e.value.code == 2 and "holds no onnxruntime_c_api.h" in capsys.readouterr().err
    assert (dest.read_text() if kind == "file" else (dest / "notes.txt").read_text()) == "notes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev.deb", "mine"]
