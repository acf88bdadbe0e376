"""The service files: the systemd unit's command line is one tsi-live accepts, with the behaviour
the documentation promises (restart on failure, journald, SIGTERM stop), and the example sources
file parses."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from runtime.sources import parse_source
from runtime.live import build_parser, options_from_args
from runtime.plan import read_sources_file

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def unit() -> dict[str, list[str]]:
    text = (DEPLOY / "tsi-live.service").read_text().replace("\\\n", " ")
    keys: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            k, v = line.split("=", 1)
            keys.setdefault(k.strip(), []).append(v.strip())
    return keys


def test_the_unit_restarts_on_failure_logs_to_journald_and_stops_with_sigterm():
    u = unit()
    assert u["Restart"] == ["on-failure"] and u["RestartPreventExitStatus"] == ["2"]
    assert u["KillSignal"] == ["SIGTERM"] and int(u["TimeoutStopSec"][0]) >= 10
    assert u["StandardOutput"] == ["journal"] and u["StandardError"] == ["journal"]


def test_the_units_command_line_is_accepted_by_tsi_live():
    env = dict(line.split("=", 1) for line in (DEPLOY / "tsi-live.env").read_text().splitlines()
               if line and not line.startswith("#"))
    cmd = unit()["ExecStart"][0]
    cmd = re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], cmd)
    cmd = re.sub(r"\$(\w+)", lambda m: env[m.group(1)], cmd)
    argv = shlex.split(cmd)
    assert argv[0].endswith("tsi-live")
    opts = options_from_args(build_parser().parse_args(argv[1:]))
    assert opts.headless and opts.reconnect_attempts is None and opts.reconnect_limit is None
    assert opts.sources_file == "/etc/tsi/sources.txt" and "{name}" in opts.out_jsonl
    assert 0 < opts.stall_timeout < 30


def test_the_example_sources_file_parses():
    from runtime.plan import _split_name

    entries = [_split_name(x) for x in read_sources_file(DEPLOY / "sources.txt")]
    assert [n for n, _ in entries] == ["door", "yard", "csi0"]
    assert [parse_source(s).kind for _, s in entries] == ["url", "url", "pipeline"]


def test_the_unit_and_the_container_check_health_on_the_served_port():
    from runtime.serve.address import parse_address

    u = unit()
    assert u["Type"] == ["notify"] and int(u["WatchdogSec"][0]) > 0
    env = dict(line.split("=", 1) for line in (DEPLOY / "tsi-live.env").read_text().splitlines()
               if line and not line.startswith("#"))
    assert "--serve ${TSI_SERVE}" in u["ExecStart"][0]
    assert parse_address(env["TSI_SERVE"]) == ("127.0.0.1", 8080)
    docker = (DEPLOY / "Dockerfile.l4t").read_text()
    entry = re.search(r'^ENTRYPOINT (\[.*\])', docker, re.M).group(1)
    argv = __import__("json").loads(entry)
    host, port = parse_address(argv[argv.index("--serve") + 1])
    check = re.search(r"^HEALTHCHECK .*?CMD (.*?)\n\S", docker.replace("\\\n", " "), re.M | re.S).group(1)
    assert f"http://{host}:{port}/healthz" in check and "TSI_SERVE_TOKEN" in check
