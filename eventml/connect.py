"""Make kafka-python clients, failing fast with one sentence when no broker answers.

kafka-python waits up to 30 s and then raises from deep inside when nothing listens at the
bootstrap address; eventml first tries a plain TCP connection to each bootstrap server.

Examples
--------
>>> try:
...     ensure_reachable("127.0.0.1:1")
... except KafkaUnavailableError as error:
...     print(str(error).split(";")[0])
no Kafka broker answered at 127.0.0.1:1
"""

from __future__ import annotations

import socket
from typing import Any, Callable, TypeVar

from kafka.errors import KafkaTimeoutError

from eventml.config import bootstrap_servers as resolve_bootstrap
from eventml.errors import KafkaUnavailableError

Client = TypeVar("Client")


def no_broker_error(servers: str | None) -> KafkaUnavailableError:
    """The one-sentence error for "nothing answers at the bootstrap address"."""
    return KafkaUnavailableError(
        f"no Kafka broker answered at {resolve_bootstrap(servers)}; start one with `eventml kafka start` "
        "(or `docker compose up -d`), or set EVENTML_BOOTSTRAP_SERVERS to your cluster."
    )


def ensure_reachable(servers: str | None, timeout_s: float = 3.0) -> None:
    """Raise :class:`KafkaUnavailableError` unless one bootstrap server accepts a TCP connection."""
    for server in resolve_bootstrap(servers).split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            socket.create_connection((host.strip("[]") or "localhost", int(port)), timeout=timeout_s).close()
            return
        except (OSError, ValueError):
            continue
    raise no_broker_error(servers)


def make_client(factory: Callable[..., Client], settings: dict[str, Any]) -> Client:
    """``factory(**settings)``, after checking that the bootstrap servers answer."""
    ensure_reachable(settings["bootstrap_servers"])
    try:
        return factory(**settings)
    except KafkaTimeoutError:
        raise no_broker_error(settings["bootstrap_servers"]) from None
