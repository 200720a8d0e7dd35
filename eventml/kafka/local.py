"""The local Apache Kafka: a single-node KRaft broker from the official jars.

The first start resolves the Kafka jars with Maven into a cache (see :mod:`eventml.kafka.jars`),
then formats storage under a data directory and runs the broker with the local JDK (17+) in the
background. Nothing is faked: it is one :class:`~eventml.kafka.node.KafkaNode`, the same process each
node of a :class:`~eventml.kafka.cluster.LocalCluster` is.

``LocalKafka(secure=True)`` (``eventml kafka start --secure``, port 9094 by default) is the same
broker with one client listener that requires SASL/SCRAM-SHA-512 over TLS; its certificates and
passwords are made at the first start (see :mod:`eventml.kafka.secure`), and
:attr:`LocalKafka.settings` is how a client connects to it. A data directory remembers which kind
of broker it holds.

Examples
--------
From a notebook or a test, as a context manager (the broker stops at the end only if this
block started it):

>>> from eventml.kafka.local import LocalKafka
>>> with LocalKafka(port=19092, data_dir="/tmp/eventml-doc-kafka") as kafka:  # doctest: +SKIP
...     print(kafka.bootstrap_servers)
127.0.0.1:19092
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from eventml.errors import BrokerError, ConfigError
from eventml.kafka import secure as secured
from eventml.kafka.jars import KAFKA_VERSION
from eventml.kafka.node import (DEFAULT_PORT, KafkaNode, StopsWhatItStarted, broker_properties, default_data_dir,
                                free_port, is_formatted, new_cluster_id)
from eventml.kafka.settings import KafkaSettings

__all__ = ["DEFAULT_PORT", "DEFAULT_SECURE_PORT", "BrokerStatus", "LocalKafka", "default_data_dir", "free_port",
           "kafka_for"]

#: The secured broker's default client port (its controller: the next one).
DEFAULT_SECURE_PORT = 9094


@contextlib.contextmanager
def kafka_for(bootstrap_servers: str | None = None) -> Iterator[str]:
    """``bootstrap_servers`` if given, else a fresh local broker on free ports in a temporary
    folder, stopped and removed at the end of the block; yields the bootstrap address.

    For benchmarks and tests that measure on their own broker unless told to use a cluster.

    Examples
    --------
    >>> with kafka_for("broker:9092") as servers:
    ...     print(servers)
    broker:9092
    """
    if bootstrap_servers:
        yield bootstrap_servers
        return
    with tempfile.TemporaryDirectory(prefix="eventml-kafka-") as data:
        with LocalKafka(port=free_port(), controller_port=free_port(), data_dir=data) as kafka:
            yield kafka.bootstrap_servers


@dataclasses.dataclass
class BrokerStatus:
    """What :meth:`LocalKafka.status` reports."""

    running: bool
    bootstrap_servers: str
    pid: int | None
    data_dir: Path
    #: "PLAINTEXT", or "SASL_SSL (SCRAM-SHA-512)" for a secured broker
    security: str = "PLAINTEXT"
    #: for a secured broker, the shell lines that connect to it (no password in them)
    exports: str = ""

    def __str__(self) -> str:
        over = "" if self.security == "PLAINTEXT" else f" over {self.security}"
        if self.running:
            return (f"Kafka {KAFKA_VERSION} is running at {self.bootstrap_servers}{over} (pid {self.pid}, "
                    f"data in {self.data_dir})")
        return f"Kafka is not running (data dir {self.data_dir})"


class LocalKafka(StopsWhatItStarted):
    """A single-node KRaft Apache Kafka broker run with the local JDK.

    Parameters
    ----------
    port
        The client port: the broker's PLAINTEXT listener, or its SASL_SSL one when secured
        (default 9092, secured 9094).
    controller_port
        The KRaft controller port; defaults to ``port + 1``.
    data_dir
        Folder for the broker's storage, configuration, log and pid file.
    host
        The address to listen on and advertise.
    heap_mb
        The JVM heap size.
    start_timeout_s
        How long :meth:`start` waits for the broker to answer.
    config
        Broker properties written over eventml's defaults in ``server.properties``, names and
        values as strings, e.g. ``{"auto.create.topics.enable": "false"}`` for a cluster that,
        like many production ones, never creates a topic on first use. They take effect at the
        next :meth:`start` of a broker that is not running.
    secure
        True: the client listener requires SASL/SCRAM-SHA-512 over TLS (:mod:`eventml.kafka.secure`);
        False: PLAINTEXT; None: as the data directory's broker was first started (PLAINTEXT for
        a new one). A data directory never changes kind: the other is a :class:`BrokerError`.

    Examples
    --------
    >>> strict = LocalKafka(port=19094, config={"auto.create.topics.enable": "false"})
    >>> strict.config
    {'auto.create.topics.enable': 'false'}
    """

    def __init__(self, port: int | None = None, controller_port: int | None = None,
                 data_dir: str | os.PathLike | None = None, host: str = "127.0.0.1",
                 heap_mb: int = 512, start_timeout_s: float = 90.0, config: Mapping[str, str] | None = None,
                 secure: bool | None = None):
        if secure not in (None, True, False):
            raise ConfigError(f"secure must be True, False or None, got {secure!r}")
        port = port or (DEFAULT_SECURE_PORT if secure else DEFAULT_PORT)
        self.port = port
        self.controller_port = controller_port or port + 1
        self.data_dir = Path(data_dir) if data_dir else default_data_dir(port)
        self.host = host
        self.heap_mb = heap_mb
        self.start_timeout_s = start_timeout_s
        self.config = broker_properties(config, "LocalKafka")
        self._secure = secure

    @property
    def node(self) -> KafkaNode:
        """The broker's one KRaft node, as this object is set up now."""
        return KafkaNode(self.data_dir, self.port, self.controller_port, host=self.host, heap_mb=self.heap_mb,
                         start_timeout_s=self.start_timeout_s, properties=self.config, secure=self.secure)

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def secure(self) -> bool:
        """True if this broker's client listener requires SASL/SCRAM over TLS."""
        return self.secure_files.has_users if self._secure is None else self._secure

    @property
    def secure_files(self) -> secured.SecureFiles:
        """Where a secured broker keeps its certificates and passwords (``<data dir>/secure``)."""
        return secured.SecureFiles(self.data_dir / "secure")

    @property
    def settings(self) -> KafkaSettings:
        """How clients connect to this broker, whatever the environment says: its PLAINTEXT
        listener, or, when secured, SASL_SSL with SCRAM-SHA-512 as user ``eventml`` trusting its CA
        (the password read from its file, masked in the ``repr``).

        >>> LocalKafka(port=19096).settings
        KafkaSettings(bootstrap_servers='127.0.0.1:19096', security_protocol='PLAINTEXT')
        """
        return self.node.settings

    @property
    def pid_file(self) -> Path:
        return self.node.pid_file

    @property
    def log_file(self) -> Path:
        return self.node.log_file

    def status(self) -> BrokerStatus:
        """Whether this broker runs, and where."""
        pid = self.node.pid()
        if not self.secure:
            return BrokerStatus(pid is not None, self.bootstrap_servers, pid, self.data_dir)
        return BrokerStatus(pid is not None, self.bootstrap_servers, pid, self.data_dir,
                            f"SASL_SSL ({secured.MECHANISM})", secured.exports(self.secure_files, self.bootstrap_servers))

    def start(self) -> BrokerStatus:
        """Start the broker in the background and wait until it answers.

        Idempotent: if this broker already runs, it is left alone and its status returned.
        """
        node = self.node
        self._check_kind()
        proc = node.launch(new_cluster_id())
        if proc is not None:
            node.wait_until_ready(proc)
            self._started_here = True
        return self.status()

    def _check_kind(self) -> None:
        """A data directory keeps the kind of broker it was formatted for."""
        from eventml.kafka.cluster import describe_layout, read_layout

        if read_layout(self.data_dir) is not None:
            raise BrokerError(f"{self.data_dir} holds {describe_layout(self.data_dir)}: start it with "
                              "`eventml kafka start` (LocalCluster), or give another --data-dir for a single broker")
        if self._secure is False and self.secure_files.has_users:
            raise BrokerError(f"{self.data_dir} holds a secured broker (SASL_SSL): start it with --secure "
                              "(secure=True), or give another --data-dir for a PLAINTEXT broker")
        if self._secure and is_formatted(self.data_dir) and not self.secure_files.has_users:
            raise BrokerError(f"{self.data_dir} holds a PLAINTEXT broker, formatted without SCRAM users: give the "
                              "secured broker another --data-dir (and --port), or delete this one")

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout_s``); False if it was not running."""
        return self.node.stop(timeout_s)

    def kill(self) -> bool:
        """Kill the broker at once (SIGKILL), as a crash would; False if it was not running.

        Its next start recovers the logs it did not close.
        """
        return self.node.kill()
