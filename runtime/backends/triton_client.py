"""A model served by Triton Inference Server (docs/serving.md): its address, and the connection the
Triton clip backend and step model share.

``triton://HOST:PORT/NAME`` is gRPC (port 8001 by default), ``triton+http://HOST:PORT/NAME`` HTTP
(8000). The model's config (``config.pbtxt`` as the server read it) gives its inputs, outputs,
``max_batch_size`` and the model card (``parameters``, key :data:`runtime.card.ONNX_METADATA_KEY`,
written by ``export.triton_repo``).

A request that fails because the server went away (connection refused, reset or closed, gRPC
UNAVAILABLE, a request timeout, or, once connected, the model not loaded yet after a restart) is
sent again under the reconnect policy's back-off (:class:`runtime.reconnect.ReconnectPolicy`, tsi-live's
``--reconnect-attempts`` / ``--reconnect-limit``) until the server answers or the policy gives up
(a :class:`BackendError`): the request's outputs are never dropped. The outage is kept
(:meth:`TritonConnection.take_outage`) for the scheduler to report as every stream's gap. After an
outage the config is read again and must carry the same card. Any other error (a wrong model name
or shape) is one :class:`BackendError` at once. tritonclient is imported here only
(``pip install ".[triton]"``).
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from runtime.backends.base import BackendError, BackendStopped
from runtime.card import ONNX_METADATA_KEY, CardError, ModelCard
from runtime.reconnect import ReconnectPolicy

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_PORTS", "Outage", "REQUEST_TIMEOUT_S", "SCHEMES", "TritonAddress", "TritonConnection",
           "is_triton_url"]

SCHEMES = {"triton": "grpc", "triton+grpc": "grpc", "triton+http": "http"}
DEFAULT_PORTS = {"grpc": 8001, "http": 8000}
REQUEST_TIMEOUT_S = 10.0  # a request the server does not answer in this long counts as the server gone
DTYPES = {"TYPE_FP32": np.float32, "TYPE_FP16": np.float16}
_WIRE = {np.dtype(np.float32): "FP32", np.dtype(np.float16): "FP16"}


def is_triton_url(text: Any) -> bool:
    return isinstance(text, str) and text.split("://", 1)[0].lower() in SCHEMES and "://" in text


@dataclass(frozen=True)
class TritonAddress:
    protocol: str
    host: str
    port: int
    model: str

    @classmethod
    def parse(cls, text: str) -> "TritonAddress":
        u = urlsplit(text)
        protocol = SCHEMES.get(u.scheme.lower())
        name = u.path.strip("/")
        try:
            port = u.port
        except ValueError:
            port = -1
        if protocol is None or not u.hostname or not name or "/" in name or port == -1 or u.query:
            raise BackendError(f"--model {text}: expected triton://HOST:PORT/NAME (gRPC) or "
                               "triton+http://HOST:PORT/NAME (HTTP)")
        return cls(protocol, u.hostname, port or DEFAULT_PORTS[protocol], name)

    @property
    def url(self) -> str:
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        scheme = "triton" if self.protocol == "grpc" else "triton+http"
        return f"{scheme}://{self.url}/{self.model}"


@dataclass(frozen=True)
class Outage:
    """The server was unreachable from ``start`` to ``end`` (``time.monotonic()``), ``attempts``
    requests later."""

    start: float
    end: float
    attempts: int


def _modules(protocol: str):
    try:
        if protocol == "grpc":
            import tritonclient.grpc as client
        else:
            import tritonclient.http as client
        from tritonclient.utils import InferenceServerException
    except ImportError as e:
        raise BackendError(f'a triton:// model needs tritonclient ({protocol}): pip install ".[triton]"') from e
    return client, InferenceServerException


class TritonConnection:
    """One client of one model on one server (see the module docstring). ``stop``: set, it ends a
    wait for the server (a :class:`BackendError`)."""

    def __init__(self, address: TritonAddress, policy: ReconnectPolicy | None = None,
                 stop: threading.Event | None = None) -> None:
        self.address = address
        self.policy = policy or ReconnectPolicy()
        self.stop = stop or threading.Event()
        self._mod, self._error = _modules(address.protocol)
        self._client = self._connect()
        self._outage: Outage | None = None
        self._card: ModelCard | None = None
        self.requests = 0
        self.batch_sizes: dict[int, int] = {}  # clips (or frames) per request -> requests

    def _connect(self):
        if self.address.protocol == "grpc":
            return self._mod.InferenceServerClient(self.address.url)
        return self._mod.InferenceServerClient(self.address.url, connection_timeout=REQUEST_TIMEOUT_S,
                                               network_timeout=REQUEST_TIMEOUT_S)

    # -- what the server says ----------------------------------------------------------------------
    def _gone(self, e: Exception, connected: bool) -> bool:
        """``e`` says the server is not there (or, once it was, not serving the model yet)."""
        if isinstance(e, (OSError, http.client.HTTPException)):  # refused, reset; HTTP: a pooled connection closed
            return True
        if not isinstance(e, self._error):
            return False
        status = str(e.status() or "")
        if status in ("StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED", "StatusCode.CANCELLED"):
            return True
        text = (e.message() or "").lower()
        return connected and ("unknown model" in text or "not ready" in text or "unavailable" in text)

    def _message(self, e: Exception) -> str:
        text = e.message() if isinstance(e, self._error) else str(e)
        return " ".join(str(text).split())

    def config(self) -> dict[str, Any]:
        """The model's config as the server has it (a dict, protobuf JSON names); a wrong model
        name or an unreachable server is a :class:`BackendError`."""
        try:
            if self.address.protocol == "grpc":
                cfg = self._client.get_model_config(self.address.model, as_json=True)["config"]
            else:
                cfg = self._client.get_model_config(self.address.model)
        except Exception as e:  # noqa: BLE001 - tritonclient's and the socket's errors
            if isinstance(e, (OSError, self._error)):
                where = f"{self.address}: " + ("the server is not reachable" if self._gone(e, False) else
                                               "the server cannot serve this model")
                raise BackendError(f"{where} ({self._message(e)})") from None
            raise
        return cfg

    def card(self, cfg: dict[str, Any]) -> ModelCard:
        text = cfg.get("parameters", {}).get(ONNX_METADATA_KEY, {}).get("string_value")
        if not text:
            raise CardError(f"{self.address}: the model's config has no parameter {ONNX_METADATA_KEY!r} (the model "
                            "card): write the repository with tsi-triton-repo or tsi-build-engine --triton-repo")
        self._card = ModelCard.from_json(text, f"{self.address} (config parameters {ONNX_METADATA_KEY!r})")
        return self._card

    # -- requests -------------------------------------------------------------------------------
    def infer(self, inputs: dict[str, np.ndarray], outputs: list[str], batch: int) -> list[np.ndarray]:
        """The ``outputs`` for ``inputs`` (one request of ``batch`` clips or frames), sent again
        with back-off while the server is gone (see the module docstring)."""
        t_lost: float | None = None
        attempt = 0
        while True:
            req = []
            for name, x in inputs.items():
                i = self._mod.InferInput(name, list(x.shape), _WIRE[x.dtype])
                i.set_data_from_numpy(x)
                req.append(i)
            want = [self._mod.InferRequestedOutput(n) for n in outputs]
            try:
                if self.address.protocol == "grpc":
                    res = self._client.infer(self.address.model, req, outputs=want, client_timeout=REQUEST_TIMEOUT_S)
                else:
                    res = self._client.infer(self.address.model, req, outputs=want)
                out = [res.as_numpy(n) for n in outputs]
            except Exception as e:  # noqa: BLE001 - classified: gone (retried) or a one-line error
                if not self._gone(e, True):
                    raise BackendError(f"{self.address}: {self._message(e)}") from None
                if t_lost is None:
                    t_lost = time.monotonic()
                    log.warning("%s: the server went away (%s); sending the request again (%s)", self.address,
                                self._message(e)[:120], self.policy.describe())
                attempt = self._wait(t_lost, attempt)
                continue
            if t_lost is not None:
                self._back(t_lost, attempt)
            self.requests += 1
            self.batch_sizes[batch] = self.batch_sizes.get(batch, 0) + 1
            return out

    def _wait(self, t_lost: float, attempt: int) -> int:
        elapsed = time.monotonic() - t_lost
        p = self.policy
        delay = p.delay(attempt)
        limit = p.exhausted(attempt, elapsed, delay)
        if limit == "attempts":
            raise BackendError(f"{self.address}: the server went away and did not come back after {attempt} "
                               f"attempt(s) over {elapsed:.1f}s")
        if limit == "timeout":
            raise BackendError(f"{self.address}: the server went away and did not come back within {p.timeout:g}s")
        if self.stop.wait(delay):
            raise BackendStopped(f"{self.address}: stopped while waiting for the server")
        if self.address.protocol == "http":  # a fresh connection pool after a reset
            self._client.close()
            self._client = self._connect()
        return attempt + 1

    def _back(self, t_lost: float, attempts: int) -> None:
        now = time.monotonic()
        log.warning("%s: the server is back after %.2fs (%d attempt(s))", self.address, now - t_lost, attempts)
        if self._card is not None:
            before = self._card
            card = self.card(self.config())
            self._card = before
            if card != before:
                raise CardError(f"{self.address}: the server came back with another model card")
        prev = self._outage
        self._outage = Outage(prev.start if prev else t_lost, now, attempts + (prev.attempts if prev else 0))

    def take_outage(self) -> Outage | None:
        """The outage since the last call (the earliest start to the latest end), if any."""
        out, self._outage = self._outage, None
        return out

    def stats(self) -> dict[str, Any]:
        """Requests sent and clips (or frames) per request."""
        return {"requests": self.requests, "batch_sizes": dict(sorted(self.batch_sizes.items()))}

    def close(self) -> None:
        if self._client is not None:
            if self.requests:
                log.info("%s: %d requests, clips per request %s", self.address, self.requests,
                         json.dumps(self.stats()["batch_sizes"]))
            self._client.close()
            self._client = None
