"""Facts stated once, read from the sources with ``ast`` (docstrings and comments aside): each has one
home and every other module imports it. A restatement elsewhere fails the test, naming file and line.

- the step-graph names ``FRAME_INPUT`` / ``LOGITS_OUTPUT`` / ``STATE_OUT_SUFFIX`` (runtime/step_graph.py);
- the ONNX opset ``OPSET`` (export/names.py);
- the target TensorRT version ``TARGET_TRT`` (runtime/trt_version.py; also as the cache header's int);
- the artefact names: the tags and suffixes of export/names.py (``.plugin``, ``.online``, ``.fp16``,
  ``.int8.qdq``, ``.int8.calib.cache``, ``.int8.cpu``), as a value or inside a file name;
- the video suffixes ``VIDEO_SUFFIXES`` (runtime/common/video.py).

Counted as a restatement: a name assigned one of those literal values (``OPSET = 17``,
``FRAME = "frame"``); a string literal that holds the TensorRT version (``"10.3"``, also in a
message), the state suffix, or an artefact file name (``f"{n}.fp16.onnx"``; prose with spaces around
a ``<name>`` placeholder is not a file name); ``17`` given to anything called opset; a tuple/list/set
literal of two or more video suffixes, or a module-level ``VIDEO_SUFFIXES = ...`` outside its home.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tsi", "export", "calib", "runtime", "benchmarks")
HOMES = {
    "step graph": "runtime/step_graph.py",
    "opset": "export/names.py",
    "tensorrt": "runtime/trt_version.py",
    "artefact names": "export/names.py",
    "video suffixes": "runtime/common/video.py",
}


def _module_constants(path: Path) -> dict[str, object]:
    """Module-level ``NAME = <literal>`` of a file (dict/tuple literals evaluated)."""
    out = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def facts(root: Path = ROOT) -> dict:
    """The values, read from their homes (so the test follows the code)."""
    step = _module_constants(root / HOMES["step graph"])
    names = _module_constants(root / HOMES["artefact names"])
    trt = _module_constants(root / HOMES["tensorrt"])
    video = _module_constants(root / HOMES["video suffixes"])
    major, minor = (int(v) for v in trt["TARGET_TRT"].split("."))
    return {
        "step": {step["FRAME_INPUT"], step["LOGITS_OUTPUT"], step["STATE_OUT_SUFFIX"]},
        "state_suffix": step["STATE_OUT_SUFFIX"],
        "opset": names["OPSET"],
        "trt": trt["TARGET_TRT"],
        "trt_int": major * 10000 + minor * 100,
        "tags": {names["PLUGIN_TAG"], names["ONLINE_TAG"], names["CALIB_CACHE_SUFFIX"], names["CPU_INT8_TAG"],
                 *names["PRECISION_GRAPH_TAGS"].values()},
        "video": set(video["VIDEO_SUFFIXES"]),
    }


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                ids.add(id(first.value))
    return ids


def _mentions_opset(node: ast.AST | None) -> bool:
    if isinstance(node, ast.Name):
        return "opset" in node.id.lower()
    if isinstance(node, ast.Attribute):
        return "opset" in node.attr.lower()
    if isinstance(node, ast.Call):
        return _mentions_opset(node.func)
    return False


def restatements(root: Path = ROOT, packages=PACKAGES) -> list[str]:
    f = facts(ROOT)
    version = re.compile(rf"(?<![\d.]){re.escape(f['trt'])}(?![\d])")
    file_name = re.compile("(" + "|".join(re.escape(t) for t in sorted(f["tags"])) + r")(\.[\w{}]+)*\.(onnx|engine|json|cache|xml|bin)$")
    bad = []
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            tree = ast.parse(path.read_text(encoding="utf-8"), rel)
            docs = _docstrings(tree)

            def add(node, what, rel=rel):
                bad.append(f"{rel}:{node.lineno}: {what}")

            for node in ast.walk(tree):
                # a name given the literal value of a fact
                if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Constant):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    value = node.value.value
                    for t in targets:
                        if not isinstance(t, ast.Name):
                            continue
                        if isinstance(value, str) and value in f["step"] and rel != HOMES["step graph"]:
                            add(node, f"{t.id} = {value!r} restates a step-graph name")
                        if value == f["opset"] and "opset" in t.id.lower() and rel != HOMES["opset"]:
                            add(node, f"{t.id} = {value} restates OPSET")
                        if isinstance(value, str) and value in f["tags"] and rel != HOMES["artefact names"]:
                            add(node, f"{t.id} = {value!r} restates an artefact name")
                if isinstance(node, ast.Assign) and rel != HOMES["video suffixes"] and any(
                        isinstance(t, ast.Name) and t.id == "VIDEO_SUFFIXES" for t in node.targets):
                    add(node, "VIDEO_SUFFIXES assigned outside runtime/common/video.py")
                if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and rel != HOMES["video suffixes"]:
                    found = {e.value for e in node.elts if isinstance(e, ast.Constant)} & f["video"]
                    if len(found) >= 2:
                        add(node, f"a list of video suffixes {sorted(found)}")
                # 17 given to an opset
                if rel != HOMES["opset"]:
                    if isinstance(node, ast.keyword) and node.arg and "opset" in node.arg.lower() and \
                            isinstance(node.value, ast.Constant) and node.value.value == f["opset"]:
                        add(node.value, f"{node.arg}={f['opset']} restates OPSET")
                    if isinstance(node, ast.Compare):
                        sides = [node.left, *node.comparators]
                        if any(isinstance(s, ast.Constant) and s.value == f["opset"] for s in sides) and \
                                any(_mentions_opset(s) for s in sides):
                            add(node, f"an opset compared with {f['opset']} restates OPSET")
                    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        args = node.args.posonlyargs + node.args.args
                        pairs = list(zip(args[len(args) - len(node.args.defaults):], node.args.defaults))
                        pairs += [(a, d) for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults) if d is not None]
                        for a, d in pairs:
                            if "opset" in a.arg.lower() and isinstance(d, ast.Constant) and d.value == f["opset"]:
                                add(d, f"default {a.arg}={f['opset']} restates OPSET")
                # string literals (not docstrings; f-string pieces included)
                if isinstance(node, ast.Constant) and id(node) not in docs:
                    v = node.value
                    if isinstance(v, int) and not isinstance(v, bool) and v == f["trt_int"] and rel != HOMES["tensorrt"]:
                        add(node, f"{v} restates the target TensorRT version")
                    if not isinstance(v, str):
                        continue
                    if rel != HOMES["tensorrt"] and version.search(v):
                        add(node, f"{v[:40]!r} restates the target TensorRT version")
                    if rel != HOMES["step graph"] and not re.search(r"\s", v) and v.endswith(f["state_suffix"]):
                        add(node, f"{v!r} restates STATE_OUT_SUFFIX")
                    if rel != HOMES["artefact names"] and not re.search(r"\s", v) and \
                            (v in f["tags"] or file_name.search(v)):
                        add(node, f"{v!r} restates an artefact name")
    return bad


def test_each_fact_is_stated_once():
    assert restatements() == []


def test_the_homes_define_them_and_others_import_them():
    f = facts()
    assert f["opset"] == 17 and f["trt"] == "10.3" and f["state_suffix"] == ".next" and ".mp4" in f["video"]
    imports: dict[str, set[str]] = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module:
                    for a in node.names:
                        imports.setdefault(f"{node.module}.{a.name}", set()).add(path.relative_to(ROOT).as_posix())
    for name in ("runtime.step_graph.FRAME_INPUT", "runtime.step_graph.STATE_OUT_SUFFIX", "export.names.OPSET",
                 "runtime.trt_version.TARGET_TRT", "runtime.common.video.VIDEO_SUFFIXES"):
        assert imports.get(name), f"{name} is imported nowhere"


def test_the_check_finds_restatements(tmp_path):
    """The checker itself, on a package of restatements (and of what is not one)."""
    pkg = tmp_path / "export"
    pkg.mkdir()
    (pkg / "bad.py").write_text(
        '"""Docstrings may say TensorRT 10.3, opset 17 and <n>.fp16.onnx."""\n'
        "OPSET = 17\n"
        'FRAME = "frame"\n'
        'TRT = "10.3"\n'
        "VERSION_INT = 100300\n"
        'SUFFIXES = (".mp4", ".avi")\n'
        "def f(name, opset=17):\n"
        '    msg = f"TensorRT 10.3 rejects {name}"\n'
        '    return f"{name}.fp16.onnx", name + ".int8.qdq.onnx", f"{name}.next", ".online"\n'
        "def ok(name):\n"
        '    return "see <name>.fp16.onnx for details", "calib.fp16", "10.30", "frame" == name, 16\n')
    found = restatements(tmp_path, packages=("export",))
    lines = sorted(int(r.split(":")[1]) for r in found)
    assert lines == [2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9], found
