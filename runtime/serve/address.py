"""``--serve [HOST:]PORT`` (loopback unless a host is given) and the access token."""

from __future__ import annotations

import os

__all__ = ["LOOPBACK", "TOKEN_ENV", "parse_address", "resolve_token"]

LOOPBACK = "127.0.0.1"
TOKEN_ENV = "TSI_SERVE_TOKEN"  # the token when --serve-token is not given


def parse_address(text: str) -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port); ValueError naming the problem."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = LOOPBACK, text
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"--serve {text!r}: write an IPv6 host in brackets, [::1]:8080")
    if not host:
        raise ValueError(f"--serve {text!r}: no host before ':' (give PORT alone for {LOOPBACK})")
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"--serve {text!r}: the port must be a number ([HOST:]PORT)") from None
    if not 0 <= number <= 65535:
        raise ValueError(f"--serve {text!r}: the port must be 0-65535 (0: any free one)")
    return host, number


def resolve_token(given: str | None) -> str | None:
    """The token: ``given``, else ``$TSI_SERVE_TOKEN``, else None (none asked); an empty one is
    refused (it would let everyone in while looking set)."""
    token = given if given is not None else os.environ.get(TOKEN_ENV)
    if token is not None and not token.strip():
        raise ValueError(f"the serve token is empty (--serve-token or ${TOKEN_ENV}): set one or unset it")
    return token
