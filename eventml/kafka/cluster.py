"""A local multi-node Apache Kafka cluster: several KRaft nodes on one machine, for scale-out and failover.

``LocalCluster(brokers=3)`` (``eventml kafka start --brokers 3``) runs three JVMs from the same
jars as :class:`~eventml.kafka.local.LocalKafka`, each node both a KRaft controller and a broker
(three voters: the quorum survives one node down). New topics, the internal ones included, get
replication factor 3 and ``min.insync.replicas=2``: with ``acks=all`` (eventml's producers' default)
a write survives one node stopped or killed, and writes go on while one node is down.

Each node is a :class:`~eventml.kafka.node.KafkaNode` in ``DATA_DIR/node-N`` (its storage,
``server.properties``, ``server.log`` and pid file); ``DATA_DIR/cluster.json`` remembers the cluster's
size, ports and id, so a node can be stopped and started again from another process (``eventml kafka
stop --node 2``, ``eventml kafka start --node 2``). Node ``N`` listens for clients on ``port + 2(N-1)`` and for its
controller on the port after it (9092/9093, 9094/9095, 9096/9097 by default); ``port=0`` picks
free ports.

Guaranteed: every node is a real Apache Kafka broker and controller, and a start waits until each
started node is registered and unfenced in the cluster's metadata. Not guaranteed: a node that was
just started is back in every partition's ISR (wait with :meth:`LocalCluster.wait_until_in_sync`).

Examples
--------
>>> cluster = LocalCluster(brokers=3, port=19092, data_dir="/tmp/eventml-doc-cluster")
>>> print(cluster.bootstrap_servers)
127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096
>>> with LocalCluster(brokers=3, port=0) as cluster:  # doctest: +SKIP
...     em.create_topic("clicks", partitions=6, kafka=cluster.settings)   # replication factor 3
...     cluster.stop_node(cluster.leader("clicks", 0))                    # failover
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from eventml.errors import BrokerError, ConfigError
from eventml.kafka.jars import KAFKA_VERSION
from eventml.kafka.node import (DEFAULT_PORT, KafkaNode, StopsWhatItStarted, broker_properties, default_data_dir,
                                free_port, is_formatted, new_cluster_id, port_is_free)
from eventml.kafka.settings import KafkaSettings

#: the file in a cluster's data directory that says how many nodes it has, their ports and its id
CLUSTER_FILE = "cluster.json"
#: the JVM heap of each node (three on a laptop)
DEFAULT_HEAP_MB = 384
#: each node's JVM options: the C1 compiler only. On two shared cores a three-node cluster starts about
#: three times faster with it (C2's compiler threads compete with three JVMs starting), and produced
#: no slower (faster, in fact) in a run of 200,000 records with acks=all, the producers' default; see the README.
DEFAULT_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1",)
#: how long :meth:`LocalCluster.partitions` asks again about a topic the node it asked does not know yet
METADATA_WAIT_S = 10.0


def replication_defaults(brokers: int) -> dict[str, str]:
    """The broker properties that make new topics (the internal ones too) survive one node down:
    replication factor ``min(3, brokers)`` and ``min.insync.replicas`` one less (at least 1).

    >>> replication_defaults(3)["min.insync.replicas"], replication_defaults(1)["default.replication.factor"]
    ('2', '1')
    """
    factor = min(3, brokers)
    in_sync = str(max(1, factor - 1))
    factor_s = str(factor)
    return {
        "default.replication.factor": factor_s,
        "min.insync.replicas": in_sync,
        "offsets.topic.replication.factor": factor_s,
        "offsets.topic.num.partitions": factor_s,
        "transaction.state.log.replication.factor": factor_s,
        "transaction.state.log.min.isr": in_sync,
        "transaction.state.log.num.partitions": factor_s,
        "share.coordinator.state.topic.replication.factor": factor_s,
        "share.coordinator.state.topic.min.isr": in_sync,
    }


def read_layout(data_dir: str | os.PathLike) -> dict[str, Any] | None:
    """What ``DATA_DIR/cluster.json`` says of a cluster, or None if the folder holds none (a
    ``cluster.json`` whose nodes were never formatted, left by a first start that failed, is none)."""
    path = Path(data_dir) / CLUSTER_FILE
    try:
        layout = json.loads(path.read_text())
        nodes = [(int(node["id"]), int(node["port"]), int(node["controller_port"])) for node in layout["nodes"]]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BrokerError(f"cannot read {path} ({exc!r}); delete the folder {data_dir} to start over") from None
    formatted = any(is_formatted(Path(data_dir) / f"node-{node_id}") for node_id, _, _ in nodes)
    return layout if formatted else None


def describe_layout(data_dir: str | os.PathLike) -> str:
    """"a 3-node cluster" (for messages)."""
    layout = read_layout(data_dir) or {}
    return f"a {len(layout.get('nodes', []))}-node cluster"


@dataclasses.dataclass(frozen=True)
class NodeStatus:
    """One row of :meth:`LocalCluster.status`."""

    node_id: int
    port: int
    controller_port: int
    pid: int | None
    running: bool

    @property
    def state(self) -> str:
        return "up" if self.running else "down"


@dataclasses.dataclass
class ClusterStatus:
    """What :meth:`LocalCluster.status` reports: a row per node."""

    nodes: list[NodeStatus]
    bootstrap_servers: str
    data_dir: Path

    @property
    def running(self) -> bool:
        """True if every node is up."""
        return all(node.running for node in self.nodes)

    @property
    def up(self) -> list[int]:
        """The ids of the nodes that are up."""
        return [node.node_id for node in self.nodes if node.running]

    def __iter__(self) -> Iterator[NodeStatus]:
        return iter(self.nodes)

    def __str__(self) -> str:
        head = (f"Kafka {KAFKA_VERSION} cluster of {len(self.nodes)} nodes at {self.bootstrap_servers}: "
                f"{len(self.up)} up (data in {self.data_dir})")
        rows = [f"{'node':>4}  {'port':>5}  {'controller':>10}  {'pid':>8}  state"]
        rows += [f"{n.node_id:>4}  {n.port:>5}  {n.controller_port:>10}  {n.pid or '-':>8}  {n.state}"
                 for n in self.nodes]
        return "\n".join([head, *rows])


class LocalCluster(StopsWhatItStarted):
    """A local KRaft Apache Kafka cluster of ``brokers`` nodes, each a controller and a broker.

    Parameters
    ----------
    brokers
        How many nodes (3 by default for a new cluster; None: as many as ``data_dir`` holds).
        Every node is a KRaft voter. Topics get replication factor ``min(3, brokers)`` and
        ``min.insync.replicas`` one less, unless ``config`` says otherwise.
    port
        Node 1's client port (default 9092); node N listens on ``port + 2(N-1)`` and its
        controller on the next port. 0: free ports chosen now.
    data_dir
        The cluster's folder (node N in ``node-N``). Default: ``~/.local/share/eventml/kafka-PORT``
        (or ``$EVENTML_KAFKA_DIR``); with ``port=0``, a temporary folder removed when the ``with``
        block that started the cluster ends. A folder that holds a cluster keeps its size and ports.
    host
        The address every node listens on and advertises.
    heap_mb
        The JVM heap of each node.
    start_timeout_s
        How long a start waits for each node to register.
    config
        Broker properties written over eventml's defaults on every node (strings, as for
        :class:`LocalKafka`).
    jvm_options
        Options of each node's JVM after its heap (default: C1 only, ``-XX:TieredStopAtLevel=1``,
        for a fast start on few cores; ``()`` for the JVM's defaults).

    Examples
    --------
    >>> LocalCluster(brokers=3, port=29092, data_dir="/tmp/eventml-doc-cluster-2").voters
    '1@127.0.0.1:29093,2@127.0.0.1:29095,3@127.0.0.1:29097'
    """

    def __init__(self, brokers: int | None = 3, port: int | None = None, data_dir: str | os.PathLike | None = None,
                 host: str = "127.0.0.1", heap_mb: int = DEFAULT_HEAP_MB, start_timeout_s: float = 120.0,
                 config: Mapping[str, str] | None = None, jvm_options: Sequence[str] = DEFAULT_JVM_OPTIONS):
        if brokers is not None and (not isinstance(brokers, int) or isinstance(brokers, bool) or brokers < 1):
            raise ConfigError(f"brokers must be a whole number of at least 1, got {brokers!r}")
        if port is not None and (not isinstance(port, int) or not 0 <= port <= 65535 - 2 * (brokers or 3)):
            raise ConfigError(f"port must be a TCP port (0: free ports), got {port!r}")
        self.host = host
        self.heap_mb = heap_mb
        self.start_timeout_s = start_timeout_s
        self.config = broker_properties(config, "LocalCluster")
        if isinstance(jvm_options, str) or not all(isinstance(option, str) for option in jvm_options):
            raise ConfigError(f"jvm_options must be a list of strings such as ['-XX:+UseSerialGC'], got {jvm_options!r}")
        self.jvm_options = tuple(jvm_options)
        self._temporary = data_dir is None and port == 0
        if self._temporary:
            data_dir = tempfile.mkdtemp(prefix="eventml-cluster-")
        self.data_dir = Path(data_dir) if data_dir else default_data_dir(DEFAULT_PORT if port is None else port)
        layout = read_layout(self.data_dir)
        if layout is not None:
            if brokers is not None and brokers != len(layout["nodes"]):
                raise BrokerError(f"{self.data_dir} holds a {len(layout['nodes'])}-node cluster, not {brokers}: "
                                  f"start it with --brokers {len(layout['nodes'])} (or none), or give another --data-dir")
            self.cluster_id = layout["cluster_id"]
            ports = [(node["port"], node["controller_port"]) for node in layout["nodes"]]
            if config is None:
                self.config = broker_properties(layout.get("config"), "LocalCluster")
        else:
            self.cluster_id = new_cluster_id()
            count = brokers or 3
            if port == 0:
                ports = [(free_port(host), free_port(host)) for _ in range(count)]
            else:
                first = DEFAULT_PORT if port is None else port
                ports = [(first + 2 * i, first + 2 * i + 1) for i in range(count)]
        voters = ",".join(f"{i + 1}@{host}:{controller}" for i, (_, controller) in enumerate(ports))
        properties = {**replication_defaults(len(ports)), **self.config}
        self.nodes = [KafkaNode(self.data_dir / f"node-{i + 1}", client, controller, node_id=i + 1, voters=voters,
                                host=host, heap_mb=heap_mb, jvm_options=self.jvm_options,
                                start_timeout_s=start_timeout_s, properties=properties)
                      for i, (client, controller) in enumerate(ports)]

    # ------------------------------------------------------------------ where
    @property
    def bootstrap_servers(self) -> str:
        """Every node's client address, comma-separated."""
        return ",".join(node.bootstrap_servers for node in self.nodes)

    @property
    def settings(self) -> KafkaSettings:
        """How clients connect to this cluster (every node a bootstrap server), whatever the environment says.

        >>> LocalCluster(brokers=2, port=19192, data_dir="/tmp/eventml-doc-c").settings.bootstrap_servers
        '127.0.0.1:19192,127.0.0.1:19194'
        """
        return KafkaSettings(self.bootstrap_servers, security_protocol="PLAINTEXT", environ={})

    @property
    def voters(self) -> str:
        """``controller.quorum.voters``: every node, ``id@host:controller_port``."""
        return self.nodes[0].voters

    def node(self, node_id: int) -> KafkaNode:
        """Node ``node_id`` (1 to ``brokers``)."""
        if not isinstance(node_id, int) or not 1 <= node_id <= len(self.nodes):
            raise ConfigError(f"this cluster has nodes 1 to {len(self.nodes)}, not {node_id!r}")
        return self.nodes[node_id - 1]

    # ------------------------------------------------------------------ state
    def status(self) -> ClusterStatus:
        """A row per node: its id, ports, pid and whether it is up."""
        rows = []
        for node in self.nodes:
            pid = node.pid()
            rows.append(NodeStatus(node.node_id, node.port, node.controller_port, pid, pid is not None))
        return ClusterStatus(rows, self.bootstrap_servers, self.data_dir)

    # ------------------------------------------------------------------ start and stop
    def start(self) -> ClusterStatus:
        """Start every node that is not running and wait until each is registered.

        Idempotent: running nodes are left alone. The nodes start together (a KRaft quorum needs a
        majority of them), their storage formatted on the first start.
        """
        nodes = [node for node in self.nodes if not node.running]
        self._prepare(nodes)
        self._launch_and_wait(nodes)
        return self.status()

    def start_node(self, node_id: int) -> NodeStatus:
        """Start one node again (after :meth:`stop_node` or :meth:`kill_node`) and wait until it is registered."""
        node = self.node(node_id)
        nodes = [] if node.running else [node]
        self._prepare(nodes)
        self._launch_and_wait(nodes)
        return self.status().nodes[node_id - 1]

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop every node (SIGTERM to all, SIGKILL after ``timeout_s``); False if none was running."""
        pids = [(node, node.signal(signal.SIGTERM)) for node in self.nodes]
        for node, pid in pids:
            if pid is not None:
                node.await_exit(pid, timeout_s)
        return any(pid is not None for _, pid in pids)

    def stop_node(self, node_id: int, timeout_s: float = 30.0) -> bool:
        """Stop one node cleanly (its partitions' leadership moves first); False if it was not running."""
        return self.node(node_id).stop(timeout_s)

    def kill_node(self, node_id: int) -> bool:
        """Kill one node at once (SIGKILL), as a crash would; False if it was not running.

        The controllers fence it when its heartbeats stop (``broker.session.timeout.ms``, 9 s),
        then its partitions get new leaders.
        """
        return self.node(node_id).kill()

    def _prepare(self, nodes: list[KafkaNode]) -> None:
        """Check the folder holds this cluster (or nothing) and the ports of ``nodes`` are free, then
        write ``cluster.json``."""
        if is_formatted(self.data_dir):
            raise BrokerError(f"{self.data_dir} holds a single broker: start it without --brokers, "
                              "or give the cluster another --data-dir")
        for node in nodes:
            for kind, port in (("client", node.port), ("controller", node.controller_port)):
                if not port_is_free(self.host, port):
                    raise BrokerError(
                        f"port {port} on {self.host} (node {node.node_id}'s {kind} port) is already taken by another "
                        f"program; stop it, or give a new cluster another --port (node 1's; the others follow)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        layout = {
            "kafka_version": KAFKA_VERSION, "cluster_id": self.cluster_id, "host": self.host,
            "nodes": [{"id": n.node_id, "port": n.port, "controller_port": n.controller_port} for n in self.nodes],
            "config": self.config,
        }
        (self.data_dir / CLUSTER_FILE).write_text(json.dumps(layout, indent=1) + "\n")

    def _launch_and_wait(self, nodes: list[KafkaNode]) -> None:
        launched: list[tuple[KafkaNode, subprocess.Popen]] = []
        try:
            # formatting runs a JVM per node: side by side
            with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
                futures = [(node, pool.submit(node.launch, self.cluster_id)) for node in nodes]
                errors = []
                for node, future in futures:
                    try:
                        proc = future.result()
                    except Exception as exc:
                        errors.append(exc)
                    else:
                        if proc is not None:
                            launched.append((node, proc))
                if errors:
                    raise errors[0]
            for node, proc in launched:
                node.wait_until_ready(proc)
        except BaseException:
            for node, _ in launched:
                node.stop(timeout_s=10.0)
            raise
        if launched:
            self._started_here = True

    # ------------------------------------------------------------------ metadata
    def partitions(self, topic: str) -> list[dict[str, Any]]:
        """A row per partition of ``topic``: ``partition``, ``leader`` (a node id, None if it has
        none), ``replicas`` and ``isr`` (lists of node ids), sorted by partition."""
        from eventml.kafka.clients import admin

        # The node asked may learn of a topic just created a moment after the one that created it.
        deadline = time.monotonic() + METADATA_WAIT_S
        client = admin(self.settings, request_timeout_ms=5000)
        try:
            described = client.describe_topics([topic])
            while (not described or described[0].get("error_code")) and time.monotonic() < deadline:
                time.sleep(0.1)
                described = client.describe_topics([topic])
        finally:
            client.close()
        if not described or described[0].get("error_code"):
            raise BrokerError(f"topic {topic!r} is not on the cluster at {self.bootstrap_servers}; create it first")
        rows = [{"partition": p["partition_index"], "leader": p["leader_id"] if p["leader_id"] >= 0 else None,
                 "replicas": list(p["replica_nodes"]), "isr": list(p["isr_nodes"])}
                for p in described[0]["partitions"]]
        return sorted(rows, key=lambda row: row["partition"])

    def leader(self, topic: str, partition: int = 0) -> int | None:
        """The node id that leads ``partition`` of ``topic`` now (None while it has no leader)."""
        for row in self.partitions(topic):
            if row["partition"] == partition:
                return row["leader"]
        raise BrokerError(f"topic {topic!r} has no partition {partition}")

    def wait_until_in_sync(self, topic: str, timeout_s: float = 60.0) -> None:
        """Wait until every replica of every partition of ``topic`` is in sync (after a node came back)."""
        deadline = time.monotonic() + timeout_s
        rows = []
        while time.monotonic() < deadline:
            try:
                rows = self.partitions(topic)
                if all(row["leader"] is not None and set(row["isr"]) == set(row["replicas"]) for row in rows):
                    return
            except Exception:  # a node just stopped: ask again
                pass
            time.sleep(0.5)
        raise BrokerError(f"the replicas of {topic!r} were not all in sync within {timeout_s:g} s: {rows}")

    # ------------------------------------------------------------------ with
    def __exit__(self, *exc) -> None:
        started = self._started_here
        super().__exit__(*exc)
        if started and self._temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"LocalCluster(brokers={len(self.nodes)}, bootstrap_servers={self.bootstrap_servers!r}, data_dir='{self.data_dir}')"
