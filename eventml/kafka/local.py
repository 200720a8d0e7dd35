"""The local Apache Kafka: a single-node KRaft broker from the official jars.

The first start resolves the Kafka jars with Maven into a cache (see :mod:`eventml.kafka.jars`),
then formats storage under a data directory and runs the broker with the local JDK (17+) in the
background. Nothing is faked: it is the same broker a cluster runs.

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

import base64
import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

from eventml.errors import BrokerError, ConfigError
from eventml.kafka import secure as secured
from eventml.kafka.jars import KAFKA_VERSION, check_java, resolve_jars
from eventml.kafka.settings import KafkaSettings

DEFAULT_PORT = 9092
#: The secured broker's default client port (its controller: the next one).
DEFAULT_SECURE_PORT = 9094

_LOG4J2 = """status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = org.apache.kafka
logger.kafka.level = WARN
"""


def default_data_dir(port: int = DEFAULT_PORT) -> Path:
    """Where a broker keeps its logs and pid file: ``$EVENTML_KAFKA_DIR`` or a per-port folder."""
    env = os.environ.get("EVENTML_KAFKA_DIR")
    return Path(env) if env else Path.home() / ".local" / "share" / "eventml" / f"kafka-{port}"


def port_is_free(host: str, port: int) -> bool:
    """True if nothing listens on ``host:port`` and it can be bound."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


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


def _cluster_id() -> str:
    """A random KRaft cluster id: a UUID in URL-safe base64, never starting with "-", which
    Kafka's storage tool would read as an option (Kafka's own ``Uuid.randomUuid`` avoids it too)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _pid_alive(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return b"kafka.Kafka" in cmdline


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


class LocalKafka:
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
        self.config = _broker_properties(config)
        self._secure = secure
        self._started_here = False

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
        if self.secure:
            return secured.client_settings(self.secure_files, self.bootstrap_servers)
        return KafkaSettings(self.bootstrap_servers, security_protocol="PLAINTEXT", environ={})

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def _pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def status(self) -> BrokerStatus:
        """Whether this broker runs, and where."""
        pid = self._pid()
        if not self.secure:
            return BrokerStatus(pid is not None, self.bootstrap_servers, pid, self.data_dir)
        return BrokerStatus(pid is not None, self.bootstrap_servers, pid, self.data_dir,
                            f"SASL_SSL ({secured.MECHANISM})", secured.exports(self.secure_files, self.bootstrap_servers))

    def _properties(self) -> dict[str, str]:
        """eventml's broker properties for this node, before the secured listener and ``config``."""
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir / "logs"),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "delete.topic.enable": "true",
            # a transaction whose producer died (kill -9) is aborted within a second of its timeout, not ten
            # (Kafka's default check interval): a group updater's partitions move that much sooner
            "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
        }

    def _write_config(self) -> Path:
        props = self._properties()
        if self.secure:
            props.update(secured.broker_properties(self.secure_files, self.host, self.port, self.controller_port))
        props.update(self.config)
        path = self.data_dir / "server.properties"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it may hold passwords
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2.format(log=self.log_file))
        return path

    #: JVM options after the heap's (a cluster's nodes add theirs)
    _jvm_options: tuple[str, ...] = ()

    def _java(self, lib: Path, main: str, *args: str) -> list[str]:
        return [
            "java", f"-Xmx{self.heap_mb}m", f"-Xms{min(self.heap_mb, 256)}m", *self._jvm_options,
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp", f"{lib}/*", main, *args,
        ]

    def start(self) -> BrokerStatus:
        """Start the broker in the background and wait until it answers.

        Idempotent: if this broker already runs, it is left alone and its status returned.
        """
        proc = self._launch()
        if proc is not None:
            self._wait_until_ready(proc)
            self._started_here = True
        return self.status()

    def _launch(self) -> subprocess.Popen | None:
        """Check the ports, write the configuration, format the storage if new and run the JVM in the
        background, without waiting for it to answer; None if this broker already runs."""
        formatted = (self.data_dir / "logs" / "meta.properties").exists()
        self._check_kind(formatted)
        if self._pid() is not None:
            return None
        if not port_is_free(self.host, self.port):
            raise BrokerError(
                f"port {self.port} on {self.host} is already taken by another program; "
                f"stop it, or start eventml's broker on another port (--port) and set EVENTML_BOOTSTRAP_SERVERS."
            )
        if not port_is_free(self.host, self.controller_port):
            raise BrokerError(
                f"the controller port {self.controller_port} on {self.host} is already taken; "
                "choose another with --controller-port."
            )
        check_java()
        lib = resolve_jars()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.secure:
            self.data_dir.chmod(0o700)
            secured.prepare(self.secure_files, self.host)
        config = self._write_config()
        if not formatted:
            self._format(lib, config)
        with open(self.data_dir / "stdout.log", "ab") as out:
            proc = subprocess.Popen(
                self._java(lib, "kafka.Kafka", str(config)), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        return proc

    def _check_kind(self, formatted: bool) -> None:
        """A data directory keeps the kind of broker it was formatted for."""
        from eventml.kafka.cluster import describe_layout, read_layout

        if read_layout(self.data_dir) is not None:
            raise BrokerError(f"{self.data_dir} holds {describe_layout(self.data_dir)}: start it with "
                              "`eventml kafka start` (LocalCluster), or give another --data-dir for a single broker")
        if self._secure is False and self.secure_files.has_users:
            raise BrokerError(f"{self.data_dir} holds a secured broker (SASL_SSL): start it with --secure "
                              "(secure=True), or give another --data-dir for a PLAINTEXT broker")
        if self._secure and formatted and not self.secure_files.has_users:
            raise BrokerError(f"{self.data_dir} holds a PLAINTEXT broker, formatted without SCRAM users: give the "
                              "secured broker another --data-dir (and --port), or delete this one")

    def _format(self, lib: Path, config: Path) -> None:
        """Format the storage; a secured broker's SCRAM users go in through a Java argument file
        (mode 0600, deleted after), so that no password shows in ``ps``."""
        arguments = ["kafka.tools.StorageTool", "format", "-t", self._format_cluster_id(), "-c", str(config)]
        argfile = self.secure_files.folder / "format.args"
        if self.secure:
            arguments += secured.format_arguments(self.secure_files)
            argfile.unlink(missing_ok=True)
            fd = os.open(argfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as file:
                file.write("".join('"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"\n' for a in arguments))
            arguments = [f"@{argfile}"]
        try:
            fmt = subprocess.run(self._java(lib, *arguments), capture_output=True, text=True)
        finally:
            argfile.unlink(missing_ok=True)
        if fmt.returncode != 0:
            raise BrokerError(f"formatting Kafka storage in {self.data_dir} failed: {fmt.stderr.strip()[-500:]}")

    def _format_cluster_id(self) -> str:
        """The cluster id the storage is formatted with: a new one for a single broker."""
        return _cluster_id()

    def _answers(self) -> bool:
        """True once the broker answers a client (raises or returns False before)."""
        from eventml.kafka.clients import admin

        client = admin(self.settings, request_timeout_ms=3000)
        try:
            client.list_topics()
        finally:
            client.close()
        return True

    def _wait_until_ready(self, proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        last_error = ""
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise BrokerError(f"Kafka exited during start (code {proc.returncode}); last lines of "
                                  f"{self.data_dir / 'stdout.log'} and {self.log_file}:\n{self._log_tail()}")
            try:
                if self._answers():
                    return
            except Exception as exc:  # not answering yet
                last_error = str(exc)
            time.sleep(0.5)
        self.stop()
        raise BrokerError(f"Kafka did not answer at {self.bootstrap_servers} within {self.start_timeout_s:.0f} s "
                          f"(last: {last_error or 'no answer'}); see {self.log_file}:\n{self._log_tail()}")

    def _log_tail(self, lines: int = 12) -> str:
        text = ""
        for path in (self.data_dir / "stdout.log", self.log_file):
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text.strip()

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout_s``); False if it was not running."""
        pid = self._signal(signal.SIGTERM)
        if pid is not None:
            self._await_exit(pid, timeout_s)
        return pid is not None

    def kill(self) -> bool:
        """Kill the broker at once (SIGKILL), as a crash would; False if it was not running.

        Its next start recovers the logs it did not close.
        """
        pid = self._signal(signal.SIGKILL)
        if pid is not None:
            self._await_exit(pid, 10.0)
        return pid is not None

    def _signal(self, signum: int) -> int | None:
        """Send ``signum`` to the broker's JVM; its pid, or None (and no pid file) if it was not running."""
        pid = self._pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return None
        os.kill(pid, signum)
        return pid

    def _await_exit(self, pid: int, timeout_s: float) -> None:
        """Wait for the JVM ``pid`` to end, SIGKILL it after ``timeout_s``; remove the pid file."""
        deadline = time.monotonic() + timeout_s
        while _pid_alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.2)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)
        _reap(pid)
        self.pid_file.unlink(missing_ok=True)
        # a dying process drops its command line before its sockets: wait until the ports are free
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and not (port_is_free(self.host, self.port)
                                                    and port_is_free(self.host, self.controller_port)):
            _reap(pid)
            time.sleep(0.1)

    def __enter__(self) -> "LocalKafka":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._started_here:
            self.stop()
            self._started_here = False


def _broker_properties(config: Mapping[str, str] | None) -> dict[str, str]:
    """``config`` as a dict of broker properties; :class:`ConfigError` unless every name and value is a string."""
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ConfigError(f"LocalKafka's config must be a dict of broker properties, e.g. "
                          f'{{"auto.create.topics.enable": "false"}}, got {type(config).__name__}')
    bad = [f"{name!r}: {value!r}" for name, value in config.items()
           if not isinstance(name, str) or not isinstance(value, str) or not name or "\n" in name + value]
    if bad:
        raise ConfigError(f"LocalKafka's config takes broker property names and values as one-line strings "
                          f'(write "false", not False); fix {", ".join(bad)}')
    return dict(config)


def _reap(pid: int) -> None:
    """Collect a child's exit status so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
