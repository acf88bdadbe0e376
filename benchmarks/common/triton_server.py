"""A real Triton server on 127.0.0.1 for the tests and the serving benchmark: PyTriton's bundled
tritonserver serving a model repository written by ``export.triton_repo`` (deploy/triton/
pytriton_serve.py, run in the venv that deploy/triton/pytriton_venv.sh makes), started, killed and
started again on the same ports."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_SCRIPT = ROOT / "deploy" / "triton" / "pytriton_venv.sh"
SERVE_SCRIPT = ROOT / "deploy" / "triton" / "pytriton_serve.py"
ACCESS_HEADER = "triton-access-token"  # over HTTP; over gRPC the header is GRPC_ACCESS_HEADER
GRPC_ACCESS_HEADER = "triton-grpc-protocol-" + ACCESS_HEADER
SYSTEM_PYTHON = Path(os.environ.get("TSI_PYTRITON_PYTHON", "/usr/bin/python3.11"))


def pytriton_python() -> tuple[Path | None, str]:
    """The PyTriton venv's Python (made once by deploy/triton/pytriton_venv.sh), or None and why not."""
    if not SYSTEM_PYTHON.is_file():
        return None, f"{SYSTEM_PYTHON} is not here (PyTriton's tritonserver links the system Python 3.11's libpython)"
    if shutil.which("bash") is None:
        return None, "no bash to run deploy/triton/pytriton_venv.sh"
    res = subprocess.run(["bash", str(VENV_SCRIPT)], capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        return None, f"deploy/triton/pytriton_venv.sh failed: {res.stderr.strip().splitlines()[-1:]}"
    return Path(res.stdout.strip()) / "bin" / "python", ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TritonServer:
    """``start()`` / ``kill()`` (SIGKILL to the server's whole process group: PyTriton's Python and
    its tritonserver) / ``start()`` again on the same ports. ``url(name)``: tsi-live's --model."""

    def __init__(self, python: Path, repo: Path, log: Path) -> None:
        self.python, self.repo, self.log = python, repo, log
        self.ports = {"grpc": free_port(), "http": free_port(), "metrics": free_port()}
        self.proc: subprocess.Popen | None = None
        self.token = secrets.token_urlsafe(16)  # PyTriton's protected endpoints (statistics): header ACCESS_HEADER
        self.models = sorted(p.name for p in repo.iterdir() if (p / "config.pbtxt").is_file())

    def url(self, name: str, protocol: str = "grpc") -> str:
        scheme = "triton" if protocol == "grpc" else "triton+http"
        return f"{scheme}://127.0.0.1:{self.ports[protocol]}/{name}"

    def start(self, timeout: float = 90.0) -> "TritonServer":
        import tritonclient.http as http

        cmd = [str(self.python), str(SERVE_SCRIPT), "--repo", str(self.repo), "--grpc-port", str(self.ports["grpc"]),
               "--http-port", str(self.ports["http"]), "--metrics-port", str(self.ports["metrics"])]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                         env={**os.environ, "TSI_TRITON_ACCESS_TOKEN": self.token})
        client = http.InferenceServerClient(f"127.0.0.1:{self.ports['http']}")
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < timeout:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the Triton server exited ({self.proc.returncode}): {self.tail()}")
                try:
                    if all(client.is_model_ready(m) for m in self.models):
                        return self
                except Exception:  # noqa: BLE001 - not listening yet
                    pass
                time.sleep(0.2)
        finally:
            client.close()
        self.kill()
        raise RuntimeError(f"the Triton server was not ready in {timeout:.0f}s: {self.tail()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if self.proc is not None:
            try:  # what is left of the group (tritonserver, the proxy): gone before a restart
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc = None

    def tail(self, lines: int = 15) -> str:
        return " | ".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def __enter__(self) -> "TritonServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()
