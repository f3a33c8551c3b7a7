"""Mask secrets in text pytest-mlperf shows or writes.

Applied at the choke points: error messages (:class:`~pytest_mlperf.errors.MlperfError`),
result records (``build_record``), every file written (``results/store.py``), progress
lines and the host record of the session. Masked, as ``***``:

- values of environment variables whose names look secret (:data:`SECRET_NAME`), at
  least :data:`MIN_SECRET_LEN` characters long; for ``DOCKER_AUTH_CONFIG`` also each
  registry's ``auth`` (base64), its decoded ``user:password`` and the password, and any
  ``password``/``identitytoken``/``registrytoken`` value;
- credentials in URLs: ``scheme://user:password@host`` (and ``https://token@host``);
- ``Authorization:``/``Proxy-Authorization:`` header values and ``Bearer`` tokens;
- ``password=…``, ``token: …``, ``api_key=…`` and the like;
- PEM private key blocks, also when cut short at either end.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

MASK = "***"
#: Environment variable names whose values are secrets.
SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|CREDENTIAL|PRIVATE_?KEY|AUTHORIZATION"
    r"|(?:^|_)AUTH(?:$|_)",
    re.IGNORECASE,
)
#: Shorter values ("1", "true", a port) are left alone: masking them would mangle output.
MIN_SECRET_LEN = 6

_PEM = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)", re.DOTALL
)
# the end of a block whose BEGIN line was cut off (an output tail)
_PEM_TAIL = re.compile(
    r"(?:^[A-Za-z0-9+/=]{16,}\r?\n)+(?=-----END [A-Z0-9 ]*PRIVATE KEY-----)", re.M
)
_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authorization\s*[:=]\s*)"
    r"(?:(bearer|basic|token|digest|negotiate)\s+)?[^\s,;\"']+"
)
_BEARER = re.compile(r"(?i)\b(bearer\s+)(?!\*\*\*)[A-Za-z0-9\-._~+/]+=*")
_URL_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]*://)[^\s/@:]+:[^\s/@]*@")
_URL_TOKEN = re.compile(r"\b(https?://)(?!\*\*\*@)[^\s/@:]+@")
_KEY_VALUE = re.compile(
    r"(?i)(?<![A-Za-z0-9])([A-Za-z0-9_.\-]*(?:password|passwd|secret|token|api[_-]?key))"
    r"(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;\"']+)"
)
_DOCKER_SECRET_FIELDS = ("password", "identitytoken", "registrytoken")


def redact(text: str) -> str:
    """``text`` with every secret masked."""
    if not text:
        return text
    return _redact_with(text, _env_secrets(_secret_env_items()))


def redact_obj(value: Any) -> Any:
    """A copy of ``value`` (dicts, lists, tuples, strings) with every string redacted."""
    secrets = _env_secrets(_secret_env_items())
    return _walk(value, secrets)


def _walk(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return _redact_with(value, secrets)
    if isinstance(value, Mapping):
        return {k: _walk(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_walk(v, secrets) for v in value]
    return value


def _redact_with(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:  # longest first, so a value containing another goes whole
        if secret in text:
            text = text.replace(secret, MASK)
    if "PRIVATE KEY-----" in text:
        text = _PEM.sub(_masked_pem, text)
        text = _PEM_TAIL.sub(f"{MASK}\n", text)
    text = _HEADER.sub(lambda m: m.group(1) + (f"{m.group(2)} " if m.group(2) else "") + MASK, text)
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    text = _URL_TOKEN.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    return _KEY_VALUE.sub(
        lambda m: m.group(0) if m.group(3) == MASK else f"{m.group(1)}{m.group(2)}{MASK}", text
    )


def _masked_pem(match: re.Match[str]) -> str:
    kind = match.group(1)
    end = f"-----END {kind}PRIVATE KEY-----"
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{MASK}\n" + (
        end if match.group(0).endswith(end) else ""
    )


def _secret_env_items() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if SECRET_NAME.search(k)))


@lru_cache(maxsize=8)
def _env_secrets(items: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """The secret strings the environment holds, longest first."""
    found: set[str] = set()
    for name, value in items:
        found.add(value)
        if name.upper() == "DOCKER_AUTH_CONFIG":
            found.update(_docker_auth_secrets(value))
    return tuple(sorted((s for s in found if len(s) >= MIN_SECRET_LEN), key=len, reverse=True))


def _docker_auth_secrets(value: str) -> Iterable[str]:
    """``auth`` values (base64 ``user:password``), their decoded pair and password, tokens."""
    try:
        config = json.loads(value)
    except ValueError:
        return []
    found: list[str] = []
    stack: list[Any] = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            for key, item in node.items():
                if isinstance(item, str) and key.lower() == "auth":
                    found.append(item)
                    found.extend(_decoded_auth(item))
                elif isinstance(item, str) and key.lower() in _DOCKER_SECRET_FIELDS:
                    found.append(item)
                else:
                    stack.append(item)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _decoded_auth(auth: str) -> list[str]:
    try:
        pair = base64.b64decode(auth, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return []
    _user, sep, password = pair.partition(":")
    return [pair, password] if sep else [pair]
