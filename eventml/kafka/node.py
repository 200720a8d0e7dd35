"""One KRaft Apache Kafka node: a JVM that is both a controller and a broker, and the folder it keeps.

:class:`~eventml.kafka.local.LocalKafka` runs one node alone; :class:`~eventml.kafka.cluster.LocalCluster`
runs several that vote together. A node's folder holds its storage (``logs/``), ``server.properties``,
``log4j2.properties``, its log (``server.log``, ``stdout.log``) and its pid file (``broker.pid``), so that
another process can find it running, stop it or start it again.

Guaranteed: :meth:`KafkaNode.wait_until_ready` returns once the node is registered and unfenced in the
metadata it reports itself. Not guaranteed: a node's ports are still free between the check and the
JVM's bind (another program may take them first: the start then fails with the JVM's log).

Examples
--------
>>> node = KafkaNode("/tmp/eventml-doc-node", port=19292, controller_port=19293)
>>> node.server_properties()["controller.quorum.voters"], node.running
('1@127.0.0.1:19293', False)
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from eventml.errors import BrokerError, ConfigError
from eventml.kafka import secure as secured
from eventml.kafka.jars import check_java, resolve_jars
from eventml.kafka.settings import KafkaSettings

#: The default client port (the controller's: the next one).
DEFAULT_PORT = 9092

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


def is_formatted(data_dir: str | os.PathLike) -> bool:
    """True if ``data_dir`` holds a node's formatted storage."""
    return (Path(data_dir) / "logs" / "meta.properties").exists()


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


def new_cluster_id() -> str:
    """A random KRaft cluster id: a UUID in URL-safe base64, never starting with "-", which
    Kafka's storage tool would read as an option (Kafka's own ``Uuid.randomUuid`` avoids it too)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def broker_properties(config: Mapping[str, str] | None, owner: str) -> dict[str, str]:
    """``config`` (the ``config`` parameter of ``owner``) as a dict of broker properties;
    :class:`ConfigError` unless every name and value is a one-line string.

    >>> broker_properties({"auto.create.topics.enable": "false"}, "LocalKafka")
    {'auto.create.topics.enable': 'false'}
    """
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise ConfigError(f"{owner}'s config must be a dict of broker properties, e.g. "
                          f'{{"auto.create.topics.enable": "false"}}, got {type(config).__name__}')
    bad = [f"{name!r}: {value!r}" for name, value in config.items()
           if not isinstance(name, str) or not isinstance(value, str) or not name or "\n" in name + value]
    if bad:
        raise ConfigError(f"{owner}'s config takes broker property names and values as one-line strings "
                          f'(write "false", not False); fix {", ".join(bad)}')
    return dict(config)


class KafkaNode:
    """One KRaft node (controller and broker) run with the local JDK from the official jars.

    Parameters
    ----------
    data_dir
        The node's folder.
    port, controller_port
        Its client port (PLAINTEXT, or SASL_SSL when ``secure``) and its KRaft controller port.
    node_id
        Its ``node.id``.
    voters
        ``controller.quorum.voters``; default: this node alone.
    host
        The address it listens on and advertises.
    heap_mb
        Its JVM heap.
    jvm_options
        JVM options after the heap's.
    start_timeout_s
        How long :meth:`wait_until_ready` waits.
    properties
        Broker properties written last in ``server.properties``, over eventml's and the secured listener's.
    secure
        The client listener requires SASL/SCRAM-SHA-512 over TLS, with the certificates and passwords
        of ``data_dir/secure`` (:mod:`eventml.kafka.secure`), made at the first launch.
    """

    def __init__(self, data_dir: str | os.PathLike, port: int, controller_port: int, node_id: int = 1,
                 voters: str | None = None, host: str = "127.0.0.1", heap_mb: int = 512,
                 jvm_options: Sequence[str] = (), start_timeout_s: float = 90.0,
                 properties: Mapping[str, str] | None = None, secure: bool = False):
        self.data_dir = Path(data_dir)
        self.port = port
        self.controller_port = controller_port
        self.node_id = node_id
        self.voters = voters or f"{node_id}@{host}:{controller_port}"
        self.host = host
        self.heap_mb = heap_mb
        self.jvm_options = tuple(jvm_options)
        self.start_timeout_s = start_timeout_s
        self.properties = dict(properties or {})
        self.secure = secure

    # ------------------------------------------------------------------ where
    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def secure_files(self) -> secured.SecureFiles:
        """Where a secured node keeps its certificates and passwords (``<data dir>/secure``)."""
        return secured.SecureFiles(self.data_dir / "secure")

    @property
    def settings(self) -> KafkaSettings:
        """How a client connects to this node alone, whatever the environment says."""
        if self.secure:
            return secured.client_settings(self.secure_files, self.bootstrap_servers)
        return KafkaSettings(self.bootstrap_servers, security_protocol="PLAINTEXT", environ={})

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def pid(self) -> int | None:
        """The pid of this node's JVM, or None if it does not run."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    @property
    def running(self) -> bool:
        return self.pid() is not None

    # ------------------------------------------------------------------ configuration
    def server_properties(self) -> dict[str, str]:
        """Every property of this node's ``server.properties`` (the secured listener's read from its files)."""
        props = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.voters,
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
        if self.secure:
            props.update(secured.broker_properties(self.secure_files, self.host, self.port, self.controller_port))
        props.update(self.properties)
        return props

    def write_config(self) -> Path:
        """Write ``server.properties`` (mode 0600: it may hold passwords) and ``log4j2.properties``."""
        path = self.data_dir / "server.properties"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write("".join(f"{k}={v}\n" for k, v in self.server_properties().items()))
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2.format(log=self.log_file))
        return path

    def _java(self, lib: Path, main: str, *args: str) -> list[str]:
        return [
            "java", f"-Xmx{self.heap_mb}m", f"-Xms{min(self.heap_mb, 256)}m", *self.jvm_options,
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            "-cp", f"{lib}/*", main, *args,
        ]

    # ------------------------------------------------------------------ start
    def launch(self, cluster_id: str) -> subprocess.Popen | None:
        """Check the ports, write the configuration, format the storage with ``cluster_id`` if new and run
        the JVM in the background, without waiting for it to answer; None if this node already runs."""
        if self.running:
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
        config = self.write_config()
        if not is_formatted(self.data_dir):
            self._format(lib, config, cluster_id)
        with open(self.data_dir / "stdout.log", "ab") as out:
            proc = subprocess.Popen(
                self._java(lib, "kafka.Kafka", str(config)), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        return proc

    def _format(self, lib: Path, config: Path, cluster_id: str) -> None:
        """Format the storage; a secured node's SCRAM users go in through a Java argument file
        (mode 0600, deleted after), so that no password shows in ``ps``."""
        arguments = ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)]
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

    def registered(self) -> bool:
        """True once this node is registered and unfenced: listed among the brokers it reports
        (raises or returns False before)."""
        from eventml.kafka.clients import admin

        client = admin(self.settings, request_timeout_ms=3000)
        try:
            return self.node_id in {broker["broker_id"] for broker in client.describe_cluster()["brokers"]}
        finally:
            client.close()

    def wait_until_ready(self, proc: subprocess.Popen) -> None:
        """Wait until the launched node is :meth:`registered`; :class:`BrokerError` (the node stopped)
        if its JVM exits or ``start_timeout_s`` passes first."""
        deadline = time.monotonic() + self.start_timeout_s
        last_error = ""
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise BrokerError(f"Kafka exited during start (code {proc.returncode}); last lines of "
                                  f"{self.data_dir / 'stdout.log'} and {self.log_file}:\n{self._log_tail()}")
            try:
                if self.registered():
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

    # ------------------------------------------------------------------ stop
    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the node (SIGTERM, then SIGKILL after ``timeout_s``); False if it was not running."""
        pid = self.signal(signal.SIGTERM)
        if pid is not None:
            self.await_exit(pid, timeout_s)
        return pid is not None

    def kill(self) -> bool:
        """Kill the node at once (SIGKILL), as a crash would; False if it was not running.

        Its next start recovers the logs it did not close.
        """
        pid = self.signal(signal.SIGKILL)
        if pid is not None:
            self.await_exit(pid, 10.0)
        return pid is not None

    def signal(self, signum: int) -> int | None:
        """Send ``signum`` to the node's JVM; its pid, or None (and no pid file) if it was not running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return None
        os.kill(pid, signum)
        return pid

    def await_exit(self, pid: int, timeout_s: float) -> None:
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

    def __repr__(self) -> str:
        return (f"KafkaNode(node_id={self.node_id}, bootstrap_servers={self.bootstrap_servers!r}, "
                f"data_dir='{self.data_dir}')")


class StopsWhatItStarted:
    """``with`` for a local broker or cluster: :meth:`start` when the block begins, :meth:`stop` when it
    ends, but only if this object started something (``_started_here``); a broker that ran before stays."""

    _started_here = False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._started_here:
            self.stop()
            self._started_here = False


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


def _reap(pid: int) -> None:
    """Collect a child's exit status so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
