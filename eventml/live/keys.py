"""The secret that authenticates a group's state records in Kafka (see :mod:`eventml.live.state_topic`)."""

from __future__ import annotations

import os
import re

from eventml.errors import ConfigError
from eventml.kafka import logs

__all__ = ["STATE_KEY_ENV", "MIN_KEY_BYTES", "state_key"]

STATE_KEY_ENV = "EVENTML_STATE_KEY"
MIN_KEY_BYTES = 16
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2}){16,}$")
_KEY_ADVICE = (f"set {STATE_KEY_ENV} to the same secret of at least {MIN_KEY_BYTES} bytes for every updater "
               f"(e.g. export {STATE_KEY_ENV}=$(python -c 'import secrets; print(secrets.token_hex(32))'))")


def state_key(key: str | bytes | None = None) -> bytes:
    """The secret that authenticates state records: ``key``, else ``$EVENTML_STATE_KEY``.

    Text is used as its UTF-8 bytes, except a string of at least 32 hex digits (e.g. from
    ``secrets.token_hex(32)``), which is decoded; surrounding whitespace is dropped. Bytes are
    used as they are. The key never appears in a message or a ``repr``.

    Raises
    ------
    ConfigError
        If there is no key, or it is shorter than 16 bytes; the message says how to set one.

    Examples
    --------
    >>> len(state_key("00112233445566778899aabbccddeeff")), len(state_key("correct horse battery"))
    (16, 21)
    >>> state_key("short")
    Traceback (most recent call last):
    ...
    eventml.errors.ConfigError: the state key is 5 bytes, too short to authenticate state: set EVENTML_STATE_KEY to the same secret of at least 16 bytes for every updater (e.g. export EVENTML_STATE_KEY=$(python -c 'import secrets; print(secrets.token_hex(32))'))
    """
    source = "the state key"
    if key is None:
        key = os.environ.get(STATE_KEY_ENV) or None
        source = f"{STATE_KEY_ENV}"
        if key is None:
            raise ConfigError(f"no key to authenticate the live updater's state in Kafka: {_KEY_ADVICE}")
    if isinstance(key, str):
        logs.register_secrets(key)
        text = key.strip()
        key = bytes.fromhex(text) if _HEX.match(text) else text.encode("utf-8")
    elif isinstance(key, (bytes, bytearray, memoryview)):
        key = bytes(key)
    else:
        raise ConfigError(f"the state key must be text or bytes, got {type(key).__name__}")
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(f"{source} is {len(key)} bytes, too short to authenticate state: {_KEY_ADVICE}")
    return key
