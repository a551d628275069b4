"""A secret value that does not print.

Settings objects end up in reprs, tracebacks and log lines (Faust and msgspec both render
them); the password inside must not. msgspec has no `SecretStr`, so this is the small
equivalent: only `reveal()` gives the value, and only client constructors call it.
"""

from __future__ import annotations

import hmac

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
