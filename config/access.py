"""The access file: who may read what over HTTP, one token per entry (docs/operations.md "Access").

```yaml
tokens:
  - name: wall-shop0          # shown in logs and errors instead of the token
    role: floor               # floor | manager | admin
    shops: [shop0]            # or "*": every shop
    token_env: KEFU_TOKEN_WALL_SHOP0   # the token in this environment variable...
  - name: ops
    role: admin
    shops: "*"
    token: 0f3c…              # ...or in the file itself (then keep the file a secret)
```

A token is never logged nor quoted in an error: each is remembered for `mask_secrets`, and the
sentences name the file and the entry's index and field. A request's token is matched against
every known token in constant time (`AccessList.entry_for`).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import yaml

from config.secret import MIN_TOKEN_LENGTH, Secret, is_example_token, remember_secrets
from config.settings import ConfigError

Role = Literal["floor", "manager", "admin"]
ROLES: tuple[Role, ...] = ("floor", "manager", "admin")
ALL_SHOPS = "*"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENTRY_KEYS = {"name", "role", "shops", "token", "token_env"}
_TOKEN_TEXT = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no space: fits a header and a URL


class AccessFileError(ConfigError):
    """A bad access file: one sentence naming the file, the entry and the field, never a token."""


Refuse = Callable[[str, str], AccessFileError]  # (field, problem) -> the sentence for that field


@dataclass(frozen=True, slots=True)
class AccessEntry:
    name: str
    role: Role
    shops: frozenset[str] | None  # None: every shop
    digest: bytes  # SHA-256 of the token; the token itself is not kept here


@dataclass(frozen=True, slots=True)
class AccessList:
    entries: tuple[AccessEntry, ...]

    def entry_for(self, token: str) -> AccessEntry | None:
        """The entry whose token this is. Every digest is compared, whichever matches, so the
        time taken says nothing about which token (or how much of one) was right."""
        presented = token_digest(token)
        found: AccessEntry | None = None
        for entry in self.entries:
            if hmac.compare_digest(presented, entry.digest):
                found = entry
        return found


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def secret_matches(presented: str, secret: Secret) -> bool:
    """A presented credential against one configured secret, in constant time."""
    return hmac.compare_digest(token_digest(presented), token_digest(secret.reveal()))


def is_loopback(host: str) -> bool:
    """Whether `host` (web.host) reaches this machine only: 127.0.0.0/8, ::1 or `localhost`."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def load_access_file(path: str, environ: Mapping[str, str]) -> AccessList:
    """The access file at `path`; any mistake is an AccessFileError naming path and field."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise AccessFileError(f"access file {path}: cannot read it: {reason}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        # PyYAML's message quotes the line, which may hold a token: only where it is.
        raise AccessFileError(f"access file {path}: not valid YAML") from None
    tokens = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(tokens, list) or not tokens:
        raise AccessFileError(f"access file {path}: tokens: expected a list of at least one entry")
    entries = [_entry(path, f"tokens[{index}]", raw, environ) for index, raw in enumerate(tokens)]
    _check_unique(path, entries)
    return AccessList(tuple(entries))


def _entry(path: str, where: str, raw: object, environ: Mapping[str, str]) -> AccessEntry:
    def refuse(field: str, problem: str) -> AccessFileError:
        return AccessFileError(f"access file {path}: {where}.{field}: {problem}")

    if not isinstance(raw, dict):
        raise AccessFileError(f"access file {path}: {where}: expected a mapping of name, role, shops, token")
    if unknown := sorted(str(key) for key in raw if key not in _ENTRY_KEYS):
        raise refuse(unknown[0], "unknown field; the fields are name, role, shops, token or token_env")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise refuse("name", "expected a non-empty name")
    role = raw.get("role")
    if role not in ROLES:
        raise refuse("role", "expected floor, manager or admin")
    token = _token(raw, environ, refuse)
    return AccessEntry(name, cast(Role, role), _shops(raw.get("shops"), refuse), token_digest(token.reveal()))


def _shops(raw: object, refuse: Refuse) -> frozenset[str] | None:
    if raw == ALL_SHOPS:
        return None
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) and s for s in raw):
        raise refuse("shops", 'expected a list of shop ids or "*" for every shop')
    return frozenset(raw)


def _token(raw: dict[object, object], environ: Mapping[str, str], fail: Refuse) -> Secret:
    if ("token" in raw) == ("token_env" in raw):
        raise fail("token", "set exactly one of token and token_env")
    if "token_env" in raw:
        name = raw["token_env"]
        if not isinstance(name, str) or not _ENV_NAME.match(name):
            raise fail("token_env", "expected an environment variable name")
        value = environ.get(name)
        if not value:
            raise fail("token_env", f"the environment variable {name} is not set")
        field = "token_env"
    else:
        written, field = raw["token"], "token"
        if not isinstance(written, str):
            raise fail("token", "expected a string")
        value = written
    if len(value) < MIN_TOKEN_LENGTH or not _TOKEN_TEXT.match(value):
        remember_secrets([value])
        raise fail(field, f"a token is at least {MIN_TOKEN_LENGTH} printable ASCII characters without spaces")
    remember_secrets([value])  # from now on every log line and message masks it
    if is_example_token(value):
        raise fail(field, "an example token (change-me): give each entry a token of your own")
    return Secret(value)


def _check_unique(path: str, entries: list[AccessEntry]) -> None:
    names: set[str] = set()
    digests: dict[bytes, int] = {}
    for index, entry in enumerate(entries):
        if entry.name in names:
            raise AccessFileError(f"access file {path}: tokens[{index}].name: {entry.name!r} is used twice")
        names.add(entry.name)
        if entry.digest in digests:
            raise AccessFileError(
                f"access file {path}: tokens[{index}].token: the same token as "
                f"tokens[{digests[entry.digest]}]; give each entry a token of its own"
            )
        digests[entry.digest] = index
