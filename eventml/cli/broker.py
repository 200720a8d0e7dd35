"""``eventml kafka``: start, stop or check the local Apache Kafka, one broker or a cluster of several."""

from __future__ import annotations

import argparse

from eventml.cli.common import add_command
from eventml.errors import ConfigError


def _kafka(args: argparse.Namespace) -> int:
    from eventml.kafka.cluster import read_layout
    from eventml.kafka.local import DEFAULT_PORT, DEFAULT_SECURE_PORT, LocalKafka, default_data_dir

    port = args.port or (DEFAULT_SECURE_PORT if args.secure else DEFAULT_PORT)
    if (args.brokers not in (None, 1) or args.node is not None or args.kill
            or read_layout(args.data_dir or default_data_dir(port)) is not None):
        return _kafka_cluster(args)
    # --secure makes a new broker secured; an existing data directory says which kind it holds
    kafka = LocalKafka(port=port, controller_port=args.controller_port, data_dir=args.data_dir,
                       secure=True if args.secure and args.action == "start" else None)
    if args.action == "start":
        was_running = kafka.status().running
        status = kafka.start()
        print(f"{status} — already running" if was_running else str(status))
        print(status.bootstrap_servers)
    elif args.action == "stop":
        print("Kafka stopped" if kafka.stop() else "Kafka was not running")
        return 0
    else:
        status = kafka.status()
        print(status)
    if status.running and status.exports:
        print("# to connect, run these lines (the password is read from its file when they run):")
        print(status.exports)
    return 0 if status.running else 3


def _kafka_cluster(args: argparse.Namespace) -> int:
    """``eventml kafka`` on a local cluster: every node, or one with ``--node``."""
    from eventml.kafka.cluster import LocalCluster, read_layout

    refused = [option for option, given in (("--secure", args.secure), ("--controller-port", args.controller_port),
                                            ("--kill", args.kill and args.action != "stop"))
               if given]
    if refused:
        raise ConfigError(f"{' and '.join(refused)} do not go with a local cluster here: a cluster's nodes are "
                          "PLAINTEXT with their controller on the port after their own, and --kill is for stop --node")
    if args.port == 0 and not args.data_dir:
        raise ConfigError("--port 0 (free ports) needs --data-dir, where the cluster remembers the ports it got")
    if args.kill and args.node is None:
        raise ConfigError("--kill stops one node like a crash: give it with --node N")
    cluster = LocalCluster(brokers=args.brokers, port=args.port, data_dir=args.data_dir)
    if args.action == "start" and args.node is not None and read_layout(cluster.data_dir) is None:
        raise ConfigError(f"there is no cluster in {cluster.data_dir} to start node {args.node} of: start one with "
                          "--brokers 3 first")
    if args.action == "stop":
        if args.node is None:
            print("Kafka cluster stopped" if cluster.stop() else "Kafka cluster was not running")
        elif (cluster.kill_node if args.kill else cluster.stop_node)(args.node):
            print(f"node {args.node} {'killed' if args.kill else 'stopped'}")
        else:
            print(f"node {args.node} was not running")
        return 0
    was_up = cluster.status().up
    if args.action == "start" and args.node is not None:
        cluster.start_node(args.node)
    elif args.action == "start":
        cluster.start()
    status = cluster.status()
    print(status)
    if args.action == "start" and was_up:
        print(f"(already running: node{'s' if len(was_up) > 1 else ''} {', '.join(map(str, was_up))})")
    print(status.bootstrap_servers)
    return 0 if status.running else 3 if not status.up else 4


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds this module's commands to ``eventml``'s sub-parsers."""
    kafka = add_command(commands, "kafka", _kafka,
                        "start, stop or check the local Apache Kafka: one broker, or a cluster of\n"
                        "several (--brokers 3) whose nodes stop and start one by one (--node N)")
    kafka.formatter_class = argparse.RawDescriptionHelpFormatter
    kafka.epilog = """a local cluster:
  eventml kafka start --brokers 3   three nodes on 127.0.0.1:9092,9094,9096, each a KRaft controller
                                    and a broker; new topics, the internal ones too, get replication
                                    factor 3 and min.insync.replicas 2
  eventml kafka status              every node: id, ports, pid, up or down (exit 0: all up, 4: some, 3: none)
  eventml kafka stop --node 2       one node down (--kill: SIGKILL, as a crash would) ...
  eventml kafka start --node 2      ... and up again
  eventml kafka stop                every node

Node N listens on PORT + 2(N-1), its controller on the port after. The data dir remembers what it
holds (DATA_DIR/cluster.json, node N in DATA_DIR/node-N), so status, stop and start need no --brokers."""
    kafka.add_argument("action", choices=["start", "stop", "status"])
    kafka.add_argument("--brokers", type=int, metavar="N",
                       help="start a local cluster of N nodes (default: one broker, or as many as the data dir holds)")
    kafka.add_argument("--node", type=int, metavar="N", help="a cluster's node N only (start or stop; 1 to brokers)")
    kafka.add_argument("--kill", action="store_true", help="with stop --node: SIGKILL, as a crash would")
    kafka.add_argument("--port", type=int,
                       help="client port (default 9092; with --secure 9094); a cluster's node 1 (0: free ports)")
    kafka.add_argument("--controller-port", type=int, help="KRaft controller port (default: port + 1)")
    kafka.add_argument("--data-dir", help="storage folder (default: ~/.local/share/eventml/kafka-PORT)")
    kafka.add_argument("--secure", action="store_true",
                       help="a broker whose client listener requires SASL/SCRAM-SHA-512 over TLS (certificates "
                            "and passwords made in DATA_DIR/secure at the first start); status prints how to connect")
