"""trtexec JSON and tegrastats lines, in the formats those tools document."""

import json
import stat
import sys

import pytest

from benchmarks.suite.tegrastats import TegrastatsSampler, parse_line, summarize, total_mw
from benchmarks.suite.trtexec import TrtexecFormatError, load_trtexec_json

# one line each, as tegrastats prints them (JetPack 6 Orin Nano, JetPack 4 Nano, JetPack 4 Xavier)
ORIN = ("11-25-2026 07:00:00 RAM 2448/7620MB (lfb 2x4MB) SWAP 0/3810MB (cached 0MB) CPU [12%@1510,4%@1510,"
        "off,off,3%@729,0%@729] EMC_FREQ 0% GR3D_FREQ 45% cpu@48.5C soc2@46.1C VDD_IN 5187mW/4788mW "
        "VDD_CPU_GPU_CV 1197mW/797mW VDD_SOC 1435mW/1355mW")
NANO = ("RAM 1905/3964MB (lfb 99x4MB) SWAP 0/1982MB (cached 0MB) IRAM 0/252kB(lfb 252kB) CPU [5%@1479,2%@1479,"
        "3%@1479,1%@1479] EMC_FREQ 3%@1600 GR3D_FREQ 0%@921 APE 25 PLL@33C CPU@36C PMIC@100C GPU@33.5C "
        "AO@41.5C thermal@34.5C POM_5V_IN 3620/3620 POM_5V_GPU 0/0 POM_5V_CPU 123/123")
XAVIER = ("RAM 3203/15823MB (lfb 2565x4MB) SWAP 0/7911MB (cached 0MB) CPU [2%@1190,1%@1190] EMC_FREQ 0% "
          "GR3D_FREQ 0% AO@37C GPU@37.5C Tdiode@39.75C CPU@38.5C tj@39C GPU 0/0 CPU 311/311 SOC 1243/1243 "
          "CV 0/0 VDDRQ 155/155 SYS5V 1488/1488")


def test_tegrastats_rails_new_and_old_formats():
    assert parse_line(ORIN) == {"VDD_IN": 5187, "VDD_CPU_GPU_CV": 1197, "VDD_SOC": 1435}
    assert total_mw(parse_line(ORIN)) == (5187.0, "VDD_IN")  # current, not tegrastats' running average
    assert parse_line(NANO) == {"POM_5V_IN": 3620, "POM_5V_GPU": 0, "POM_5V_CPU": 123}
    assert total_mw(parse_line(NANO)) == (3620.0, "POM_5V_IN")
    # RAM 2448/7620MB and friends are not rails
    assert "RAM" not in parse_line(ORIN) and "SWAP" not in parse_line(NANO)


def test_tegrastats_without_an_input_rail_is_not_made_up():
    # JetPack 4 Xavier names rails without VDD_/POM_ and without mW: no rail is parsed, and a
    # summary over such lines refuses rather than invent a number
    assert parse_line(XAVIER) == {}
    with pytest.raises(ValueError, match="reports a power rail"):
        summarize([XAVIER], 1.0, 4)
    assert total_mw({"VDD_CPU": 500, "VDD_GPU": 700}) == (1200.0, "sum of VDD_CPU+VDD_GPU")


def test_tegrastats_energy_per_clip():
    lines = [ORIN, ORIN.replace("VDD_IN 5187mW", "VDD_IN 4813mW")]
    r = summarize(lines, seconds=2.0, clips=10)
    assert r["average_w"] == pytest.approx(5.0) and r["rail"] == "VDD_IN"
    assert r["mj_per_clip"] == pytest.approx(5.0 * 2.0 / 10 * 1000)


def test_tegrastats_sampler_runs_the_tool(tmp_path):
    """A stand-in tegrastats on PATH prints documented lines until terminated."""
    exe = tmp_path / "tegrastats"
    exe.write_text(f"#!{sys.executable}\nimport sys, time\nwhile True:\n"
                   f"    print({ORIN!r}, flush=True)\n    time.sleep(0.02)\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    with TegrastatsSampler(interval_ms=20, executable=str(exe)) as s:
        import time
        time.sleep(0.5)
    r = s.result(clips=5)
    assert r["samples"] >= 1 and r["average_w"] == pytest.approx(5.187)


def test_trtexec_times(tmp_path):
    trace = [{"startEnqMs": 10.0 * i, "endEnqMs": 10.0 * i + 0.2, "startH2dMs": 10.0 * i, "endH2dMs": 10.0 * i + 0.5,
              "startComputeMs": 10.0 * i + 0.5, "endComputeMs": 10.0 * i + 4.5, "startD2hMs": 10.0 * i + 4.5,
              "endD2hMs": 10.0 * i + 5.0, "h2dMs": 0.5, "computeMs": 4.0 + 0.1 * i, "d2hMs": 0.5,
              "latencyMs": 5.0 + 0.1 * i, "endToEndMs": 5.0} for i in range(11)]
    path = tmp_path / "times.json"
    path.write_text(json.dumps(trace))
    r = load_trtexec_json(path)
    assert r["kind"] == "times" and r["inferences"] == 11
    assert r["latency_ms"]["p50"] == pytest.approx(5.5) and r["compute_ms"]["p50"] == pytest.approx(4.5)
    assert r["throughput_qps"] == pytest.approx(10 / 105.0 * 1000)  # 10 intervals over 0..105 ms


def test_trtexec_profile_as_trtexec_writes_it(tmp_path):
    # exportJSONProfile's own text layout: "[", "  { "count" : N }", ", { "name" : ... }", "]"
    text = ('[\n  { "count" : 20 }\n'
            ', { "name" : "conv1", "timeMs" : 40, "averageMs" : 2, "percentage" : 66.6667 }\n'
            ', { "name" : "saliency_attention_0", "timeMs" : 20, "averageMs" : 1, "percentage" : 33.3333 }\n]\n')
    path = tmp_path / "profile.json"
    path.write_text(text)
    r = load_trtexec_json(path)
    assert r["kind"] == "profile" and r["runs"] == 20 and r["total_ms"] == pytest.approx(3.0)
    assert [x["name"] for x in r["top_layers"]] == ["conv1", "saliency_attention_0"]


@pytest.mark.parametrize("content, match", [("{}", "expected the JSON list"), ("nope", "not JSON"),
                                            ('[{"foo": 1}]', "neither"), ('[{"count": 2}, {"x": 1}]', "malformed")])
def test_trtexec_bad_files(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(TrtexecFormatError, match=match):
        load_trtexec_json(path)
    with pytest.raises(TrtexecFormatError, match="not found"):
        load_trtexec_json(tmp_path / "missing.json")
