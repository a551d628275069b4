"""A secret value that does not print, and the one function that masks secrets in text.

Settings objects end up in reprs, tracebacks and log lines (Faust and msgspec both render
them); the password inside must not. msgspec has no `SecretStr`, so this is the small
equivalent: only `reveal()` gives the value, and only client constructors call it.

A password inside a Redis URL is a plain string, though, and URLs reach messages: `mask_secrets`
is where every message that can hold one is cleaned (config/redaction.py applies it to every
log record).
"""

from __future__ import annotations

import functools
import hmac
import json
import re
from collections.abc import Iterable
from urllib.parse import unquote, unquote_plus, urlsplit

REDACTED = "********"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{REDACTED}')"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED

    def __eq__(self, other: object) -> bool:
        # Settings are compared on reload; constant time so the comparison leaks nothing either.
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __copy__(self) -> Secret:
        return self  # immutable

    def __deepcopy__(self, memo: dict[int, object]) -> Secret:
        return self

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would write the value out in the clear (multiprocessing, caches): refuse.
        raise TypeError("a Secret is not picklable")


# A "secret" shorter than this would blank out ordinary words; such a password is a problem anyway.
MIN_SECRET_LENGTH = 4
# A bearer token guards payroll figures on its own: long enough that guessing it is hopeless.
MIN_TOKEN_LENGTH = 16
# The shipped examples' tokens say so: anyone who read the repository knows them.
EXAMPLE_TOKEN_MARK = "change-me"


def is_example_token(token: str) -> bool:
    return EXAMPLE_TOKEN_MARK in token.lower()


_END = r"\s'\"<>`"  # what ends a URL inside a sentence, a repr or a YAML line
# `//user:password@`, with a scheme in front or not. Everything from the userinfo's first `:` to
# the token's LAST `@` is the password: redis-py splits there too, so a password may hold `@`,
# `:` or `/` (`redis://:p@ss:w/rd@host`, `unix://u:p@/run/redis.sock`, `redis+cluster://u:p@h1,h2`).
_URL_USERINFO = re.compile(rf"(?P<head>//[^{_END}/@:]*:)[^{_END}]*(?P<tail>@)")
# The same without `//`: `user:password@host` or `:password@host`, a URL whose scheme was cut
# off. Never right after `scheme:` + `//`, which the pattern above has masked already.
_BARE_USERINFO = re.compile(
    rf"(?P<head>(?:^|(?<=[{_END}(,=\[]))[^{_END}/@:]*:)(?!//)[^{_END}]*(?P<tail>@)(?=[\w\[])"
)
# Text cut with ` ... ` (PyYAML's excerpts do that) can start inside a password.
_CUT_USERINFO = re.compile(rf"(?P<head>\.\.\. )[^{_END}@]+(?P<tail>@)")
# `password=…`: the query form redis-py reads (`redis://host/0?password=…`), or any key=value;
# `token=…`: the worker's kiosk links (`/floor?shop=X&token=…`) and robot URLs' `access_token=`.
_PASSWORD_PARAMETER = re.compile(
    rf"(?i)(?P<head>(?<![a-z0-9])(?:\w*_)?(?:password|passwd|pwd|token)=)[^&#;,{_END}]+"
)
# `password: …` opening a line: a YAML line quoted in a configuration error.
_PASSWORD_KEY = re.compile(r"(?im)^(?P<head>[ \t-]*[\w-]*(?:password|passwd|pwd)[ \t]*:[ \t]+)\S.*$")
_PATTERNS = (_URL_USERINFO, _BARE_USERINFO, _CUT_USERINFO, _PASSWORD_PARAMETER, _PASSWORD_KEY)

_remembered: set[str] = set()


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with every secret replaced by `********`: the values given or remembered, and
    whatever stands where a password goes in each URL form redis-py and aiokafka accept (the
    userinfo, with `@`, `:` or `/` in the password, with or without its scheme; the query's
    `password=`), and a `password:` line. Every sentence, log record, health body, `check` line
    and error that can hold a URL goes through here."""
    known = _remembered.union(s for s in secrets if len(s) >= MIN_SECRET_LENGTH)
    forms = {form for secret in known for form in _printed_forms(secret)}
    for form in sorted(forms, key=len, reverse=True):  # longest first: none masks part of another
        text = text.replace(form, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(_masked, text)
    return text


@functools.lru_cache(maxsize=256)  # every log record is masked: a few secrets, the same each time
def _printed_forms(secret: str) -> frozenset[str]:
    """`secret` as written, and as a JSON string or a Python repr prints it: a `"` or `\\` in a
    password is escaped there (`/api/v1/config`'s body, a library's repr of its arguments), and
    the escaped text no longer holds the secret as written."""
    escaped = (json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], repr(secret)[1:-1])
    return frozenset((secret, *escaped))


def _masked(match: re.Match[str]) -> str:
    return f"{match.group('head')}{REDACTED}{match.groupdict().get('tail') or ''}"


def remember_secrets(values: Iterable[str]) -> None:
    """Secret values this process knows (the environment's, the settings'): from now on every
    `mask_secrets` masks them too, whatever the text (a library's error, a quoted config line)."""
    _remembered.update(v for v in values if len(v) >= MIN_SECRET_LENGTH)


def forget_secrets() -> None:
    """For tests: the process's remembered secrets back to none."""
    _remembered.clear()


def url_secrets(url: str) -> list[str]:
    """The password of a Redis URL in each form it can be printed in: as written (userinfo or
    `password=` query) and decoded (`%40` → `@`), as redis-py sends it."""
    try:
        written = [urlsplit(url).password or ""]
    except ValueError:  # not a URL urllib can split: the patterns still mask it
        written = []
    query = url.partition("?")[2].partition("#")[0]
    for parameter in query.split("&"):
        key, _, value = parameter.partition("=")
        if key.lower() == "password":
            written.append(value)
    found = {form for raw in written for form in (raw, unquote(raw), unquote_plus(raw)) if form}
    return sorted(found, key=len, reverse=True)
