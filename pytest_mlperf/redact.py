"""Mask secrets in text pytest-mlperf shows or writes.

Applied at the choke points: error messages (:class:`~pytest_mlperf.errors.MlperfError`),
result records (``build_record``), every file written (``results/store.py``), progress
lines and the host record of the session. Masked, as ``***``:

- values of environment variables whose names look secret (:data:`SECRET_NAME`) and whose
  values look like secrets (:func:`looks_secret`: at least :data:`MIN_SECRET_LEN`
  characters, not a plain word), wherever they stand as a whole token (not inside a longer
  word or number); for ``DOCKER_AUTH_CONFIG`` also each registry's ``auth`` (base64), its
  decoded ``user:password`` and the password, and any
  ``password``/``identitytoken``/``registrytoken`` value;
- credentials in URLs: ``scheme://user:password@host`` (and ``https://token@host``);
- ``Authorization:``/``Proxy-Authorization:`` header values and ``Bearer`` tokens;
- ``password=…``, ``token: …``, ``api_key=…`` and the like;
- PEM private key blocks, also when cut short at either end.

Only free text is masked (messages, logs, command lines, environment dumps): in a record or
data file, the fields the product reads back (:data:`DATA_FIELDS`: mode, log_dir, the
metric, LoadGen's figures...) are kept verbatim, since a masked mode or path is wrong data.
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
MIN_SECRET_LEN = 8
#: A value of letters only this long or longer is masked although it reads like a word.
_WORDLIKE_LEN = 20
_WORDLIKE = re.compile(r"[A-Za-z]+|[A-Za-z]+[-_ ][A-Za-z]+")
#: Record and data-file fields the product reads back: never masked (see the module doc).
DATA_FIELDS = frozenset(
    {
        "schema_version",
        "nodeid",
        "benchmark",
        "scenario",
        "mode",
        "modes",
        "config_ver",
        "backend",
        "system",
        "fast",
        "result_validity",
        "metric",
        "loadgen",
        "loadgen_version",
        "log_dir",
        "item_dir",
        "accuracy_dir",
        "results_dir",
        "files",
        "provenance",
        "run_id",
        "outcome",
        "code",
        "status",
        "settings_sha256",
    }
)

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


def redact_obj(value: Any, keep: frozenset[str] = DATA_FIELDS) -> Any:
    """A copy of ``value`` (dicts, lists, tuples, strings) with every string of free text
    redacted; the values of mapping keys in ``keep`` are data, copied verbatim."""
    secrets = _env_secrets(_secret_env_items())
    return _walk(value, secrets, keep)


def _walk(value: Any, secrets: tuple[str, ...], keep: frozenset[str]) -> Any:
    if isinstance(value, str):
        return _redact_with(value, secrets)
    if isinstance(value, Mapping):
        return {k: v if k in keep else _walk(v, secrets, keep) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_walk(v, secrets, keep) for v in value]
    return value


def looks_secret(value: str) -> bool:
    """Whether an environment value is worth masking: long enough, and not a plain word
    (``performance``, ``read-only``) that would mask ordinary text."""
    if len(value) < MIN_SECRET_LEN or value.strip() != value:
        return False
    return not (_WORDLIKE.fullmatch(value) and len(value) < _WORDLIKE_LEN)


def _redact_with(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:  # longest first, so a value containing another goes whole
        if secret in text:
            text = _token(secret).sub(MASK, text)
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


@lru_cache(maxsize=64)
def _token(secret: str) -> re.Pattern[str]:
    """``secret`` where it stands alone: not inside a longer word or number."""
    before = "(?<![A-Za-z0-9])" if secret[:1].isalnum() else ""
    after = "(?![A-Za-z0-9])" if secret[-1:].isalnum() else ""
    return re.compile(before + re.escape(secret) + after)


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
    return tuple(sorted((s for s in found if looks_secret(s)), key=len, reverse=True))


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
