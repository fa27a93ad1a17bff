"""What the lab may show of a config value: secrets (``apps.`` and below) never.

A teacher projecting a notebook must never put a credential on the screen, so every config
value the lab prints goes through ``shown(key, value)``: the value of a secret key is
``MASK`` whatever its type (an ``int`` PIN, a short token, a whole ``apps.billing`` mapping),
and any other value is ``short_repr``'d, which masks known secret strings inside it
(``kernel.redaction``). Keys are shown; only values are hidden.

``%config get`` of a secret key returns a ``SecretValue``: it displays as the mask (in
``Out[...]``, ``print``, a widget) and hands the real value to code that asks for it by name
with ``reveal()``.
"""

from __future__ import annotations

from typing import Any

from ..kernel.events import short_repr
from ..kernel.redaction import MASK
from ..providers.config import is_secret_key

__all__ = ["MASK", "SecretValue", "is_secret_key", "returned", "shown"]


def shown(key: str, value: Any, limit: int = 60) -> str:
    """``value`` at ``key`` as the lab prints it: ``MASK`` for a secret key.

    >>> shown("apps.billing.pin", 1234)
    '••••••'
    >>> shown("tenants.acme.pool", 7)
    '7'
    """
    if is_secret_key(key):
        return MASK
    return short_repr(value, limit)


class SecretValue:
    """A secret returned to notebook code: masked whenever shown, ``reveal()`` to use it.

    >>> token = SecretValue("apps.billing.api_key", "sk-live-123")
    >>> token
    SecretValue('apps.billing.api_key', '••••••')
    >>> token.reveal()
    'sk-live-123'
    """

    __slots__ = ("_value", "key")

    def __init__(self, key: str, value: Any) -> None:
        self.key = key
        self._value = value

    def reveal(self) -> Any:
        """The real value (for code; printing it puts the secret on the screen)."""
        return self._value

    def __repr__(self) -> str:
        return f"SecretValue({self.key!r}, {MASK!r})"

    def __str__(self) -> str:
        return MASK

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SecretValue):
            return self.key == other.key and self._value == other._value
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  (the value may be a dict)


def returned(key: str, value: Any) -> Any:
    """What ``%config get KEY`` returns: the value, or a ``SecretValue`` for a secret key."""
    return SecretValue(key, value) if is_secret_key(key) and value is not None else value
