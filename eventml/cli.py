"""The ``eventml`` command: the local broker, events in and out, topics, notebooks, live updates, serving.

It runs the local broker, produces and consumes events, manages topics, runs notebooks and
experiment grids, updates a model live and serves its predictions.

Examples
--------
.. code-block:: console

    $ eventml kafka start
    $ eventml kafka start --secure      # SASL/SCRAM over TLS on 127.0.0.1:9094; prints how to connect
    $ eventml kafka start --brokers 3   # a three-node cluster on 127.0.0.1:9092,9094,9096
    $ eventml kafka stop --node 2       # ... and one node down, then `start --node 2`
    $ eventml produce --source sea --events 10000 --topic sea --drift-at 5000
    $ eventml consume --topic sea --from-beginning --max-events 3
    $ eventml notebooks run
    $ eventml grid notebooks/03_compare_learners.ipynb --grid SEED=1,2,3 --grid SOURCE=sine,sea
    $ eventml live --events sea --predictions sea-predictions --state-dir runs/live --idle-timeout 5
    $ eventml live --events clicks --predictions clicks-predictions --group clicks   # run it N times: one
                                        # model per partition, state in Kafka (needs EVENTML_STATE_KEY)
    $ eventml serve --state-dir runs/live --port 8000

Every command that talks to Kafka takes the connection options ``--bootstrap-servers``,
``--security-protocol``, ``--sasl-mechanism``, ``--sasl-username``, ``--sasl-password-file``,
``--ssl-cafile``, ``--ssl-certfile``, ``--ssl-keyfile``, ``--ssl-password-file`` and
``--no-ssl-check-hostname``; an option not given comes from its ``EVENTML_*`` environment variable
(see :mod:`eventml.kafka.settings`). Passwords are never arguments, which ``ps`` would show: they come
from ``EVENTML_SASL_PASSWORD`` / ``EVENTML_SSL_PASSWORD``, from a file, or from a prompt on a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import signal
import sys
from typing import Any, Callable, Iterator

import orjson

from eventml.errors import ConfigError, EventmlError
from eventml.kafka.settings import ENV_NAMES, MECHANISMS, PROTOCOLS, KafkaSettings

Handler = Callable[[argparse.Namespace], int]
#: the connection options that map one to one to a KafkaSettings keyword
_OPTIONS = ("bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_username", "ssl_cafile",
            "ssl_certfile", "ssl_keyfile", "ssl_check_hostname")


def _secret(path: str | None, option: str) -> str | None:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as file:
            return file.read().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"cannot read the file given with {option}: {exc.strerror}") from None


def kafka_settings(args: argparse.Namespace) -> KafkaSettings:
    """The connection settings of a command: its options, else the ``EVENTML_*`` environment; the
    SASL password from ``--sasl-password-file``, the environment, or a prompt on a terminal."""
    keywords = {name: getattr(args, name, None) for name in _OPTIONS}
    keywords["sasl_password"] = _secret(args.sasl_password_file, "--sasl-password-file")
    keywords["ssl_password"] = _secret(args.ssl_password_file, "--ssl-password-file")
    protocol = (keywords["security_protocol"] or os.environ.get(ENV_NAMES["security_protocol"]) or "").upper()
    if (protocol.startswith("SASL_") and keywords["sasl_password"] is None
            and not os.environ.get(ENV_NAMES["sasl_password"]) and sys.stdin.isatty()):
        user = keywords["sasl_username"] or os.environ.get(ENV_NAMES["sasl_username"]) or "the SASL user"
        keywords["sasl_password"] = getpass.getpass(f"Kafka password for {user}: ") or None
    return KafkaSettings(**keywords)


class _NoPasswordArgument(argparse.Action):
    """Refuses a password on the command line without echoing it."""

    def __call__(self, parser, namespace, values, option_string=None):
        variable = ENV_NAMES["sasl_password" if "sasl" in option_string else "ssl_password"]
        parser.error(f"{option_string} is not accepted: a password on the command line shows in `ps`; "
                     f"set {variable}, or give {option_string}-file PATH")


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


def _produce(args: argparse.Namespace) -> int:
    from eventml.producer import produce
    from eventml.sources import make_source

    events = make_source(args.source, args.events, seed=args.seed, drift_at=args.drift_at)
    report = produce(events, args.topic, kafka=kafka_settings(args), rate=args.rate,
                     total=args.events, progress=not args.quiet)
    print(f"produced {report.delivered} of {report.sent} events to {args.topic!r} "
          f"in {report.seconds:.2f} s ({report.events_per_s:,.0f} events/s), {report.failed} failed")
    if report.first_error:
        print(f"first failure: {report.first_error}", file=sys.stderr)
    return 0 if report.failed == 0 else 1


def _consume(args: argparse.Namespace) -> int:
    from eventml.consumer import EventConsumer

    out = sys.stdout.buffer
    with EventConsumer(args.topic, kafka=kafka_settings(args),
                       from_beginning=args.from_beginning, offset=args.offset, timestamp=args.timestamp,
                       max_events=args.max_events, idle_timeout_s=args.idle_timeout) as consumer:
        for event in consumer:
            out.write(orjson.dumps(event.to_dict()) + b"\n")
        out.flush()
        stats = consumer.stats
    print(f"read {stats.events} events from {args.topic!r}; {stats.dead_lettered} bad records sent to "
          f"{args.topic}.dlq {stats.reasons or ''}".rstrip(), file=sys.stderr)
    return 0


def _topics(args: argparse.Namespace) -> int:
    from eventml.kafka import topics

    settings = kafka_settings(args)
    if args.action == "list":
        print("\n".join(topics.list_topics(kafka=settings)))
    elif args.action == "create":
        created = topics.create_topic(args.name, args.partitions, kafka=settings)
        print(f"created {args.name!r}" if created else f"{args.name!r} already exists")
    elif args.action == "delete":
        deleted = topics.delete_topic(args.name, kafka=settings)
        print(f"deleted {args.name!r}" if deleted else f"{args.name!r} did not exist")
    else:
        print(topics.describe_topic(args.name, kafka=settings).to_string(index=False))
    return 0


@contextlib.contextmanager
def _stop_on_signals(updater: Any) -> Iterator[None]:
    """Ctrl-C or SIGTERM asks a live updater to stop: it commits its open transaction (a group updater
    then hands its partitions over at once); a second one interrupts at once."""
    def stop(signum: int, frame: Any) -> None:
        for name in ("SIGINT", "SIGTERM"):
            signal.signal(getattr(signal, name), signal.default_int_handler)
        print("stopping after the current transaction (again to interrupt now)", file=sys.stderr)
        updater.stop()

    previous = {name: signal.signal(getattr(signal, name), stop) for name in ("SIGINT", "SIGTERM")}
    try:
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)


def _live(args: argparse.Namespace) -> int:
    if args.group is not None:
        if args.restart_on_crash:
            raise ConfigError("--restart-on-crash does not go with --group: a group's other updaters take over "
                              "the partitions of one that was killed")
        return _live_group(args)
    if args.state_dir is None:
        raise ConfigError("eventml live needs --state-dir (one updater, one global model) or --group NAME "
                          "(updaters sharing the partitions, one model per partition, state in Kafka)")
    if args.restart_on_crash:
        import importlib

        from eventml.learners import make_learner
        from eventml.live.supervise import run_restarting

        # imported once, before the fork: what a restart no longer waits for
        for module in ("eventml.live.updater", "eventml.progress"):
            importlib.import_module(module)
        make_learner(args.model)  # the model's libraries
        return run_restarting(lambda: _exit_code(_live_updater, args))
    return _live_updater(args)


def _live_updater(args: argparse.Namespace) -> int:
    from eventml.live.clients import restart_clients_early

    settings = kafka_settings(args)
    # a restart makes its Kafka clients (after a kill -9 mid-transaction, librdkafka waits 500 ms in
    # init_transactions) while the model's libraries are imported; the wanted fields are read_identity's
    early = restart_clients_early(args.state_dir, settings, {
        "events_topic": args.events, "labels_topic": args.labels, "predictions_topic": args.predictions,
        "model": args.model}, args.name, setup_timeout_s=60.0)
    try:
        from eventml.live import LiveUpdater

        updater = LiveUpdater(args.events, args.predictions, model=args.model, state_dir=args.state_dir,
                              labels_topic=args.labels, kafka=settings,
                              max_events=args.max_events, idle_timeout_s=args.idle_timeout,
                              records_per_transaction=args.records_per_transaction, transaction_interval_s=args.transaction_interval,
                              label_ttl_s=args.label_ttl, name=args.name, seed=args.seed, progress=not args.quiet)
    except BaseException:
        if early is not None:
            early.discard()
        raise
    if early is not None:
        updater.use_clients(early)
    with _stop_on_signals(updater):
        s = updater.run()
    score = "n/a" if s.score is None else f"{s.score:.4f}"
    print(f"live: {s.events} events predicted, {s.labelled} learned (model {updater.learner.name} "
          f"v{s.model_version}), {s.metric} {score}, {s.dead_letters} dead letters, {s.expired} expired, "
          f"{s.late} late and {s.unknown_id} unknown labels, {s.restarts} restarts, {s.transactions} transactions; "
          f"state in {args.state_dir}")
    return 0


def _live_group(args: argparse.Namespace) -> int:
    from eventml.live.group import GroupUpdater

    refused = [option for option, value in (("--state-dir", args.state_dir), ("--max-events", args.max_events))
               if value is not None]
    if refused:
        raise ConfigError(f"{' and '.join(refused)} do not go with --group: a group keeps its state in Kafka "
                          "and runs until --idle-timeout or Ctrl-C")
    updater = GroupUpdater(args.events, args.predictions, group=args.group, model=args.model, scope=args.scope,
                           labels_topic=args.labels, state_key=_secret(args.state_key_file, "--state-key-file"),
                           kafka=kafka_settings(args), idle_timeout_s=args.idle_timeout,
                           records_per_transaction=args.records_per_transaction,
                           transaction_interval_s=args.transaction_interval, label_ttl_s=args.label_ttl,
                           session_timeout_s=args.session_timeout, name=args.name, seed=args.seed)
    with _stop_on_signals(updater):
        figures = updater.run()
    print(f"live group {args.group!r}: updater {figures['updater']} predicted {figures['events']} events in "
          f"{figures['transactions']} transactions; its partitions changed {figures['rebalances']} times")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from eventml.serve.server import run_in_foreground

    run_in_foreground(args.state_dir, kafka_settings(args), host=args.host, port=args.port, group=args.group,
                      events_topic=args.events_topic, scope=args.scope,
                      state_key=_secret(args.state_key_file, "--state-key-file"),
                      close_loop=args.close_loop, predictions_topic=args.predictions_topic,
                      poll_interval_s=args.poll_interval, log_level=args.log_level)
    return 0


def _notebooks(args: argparse.Namespace) -> int:
    from eventml.notebooks import run_notebooks

    parameters = dict(_parse_parameter(p) for p in args.parameter)
    settings = kafka_settings(args)
    os.environ.update(settings.to_env())  # the kernels inherit the connection settings
    summary = run_notebooks(args.notebooks_dir, args.output, parameters=parameters,
                            bootstrap_servers=settings.bootstrap_servers, only=args.only)
    print(summary.drop(columns="output").to_string(index=False))
    print(f"executed notebooks, figures and key figures (NN_name.json) are in {summary['output'].iloc[0]}")
    return 0


def _grid(args: argparse.Namespace) -> int:
    from eventml.grid import grid_from_options, run_grid
    from eventml.notebooks import default_run_dir

    grid = grid_from_options(args.grid)
    parameters = dict(_parse_parameter(p) for p in args.parameter)
    output = args.output or default_run_dir("runs/grid")
    df = run_grid(args.notebook, grid, output, parameters, kafka=kafka_settings(args))
    table = df.drop(columns="output_dir").assign(error=df["error"].fillna(""))
    print(table.to_string(index=False, max_colwidth=80))
    return 1 if df.attrs["failed"] else 0


def _parse_parameter(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise EventmlError(f"--parameter must look like NAME=VALUE, got {text!r}")
    try:
        return name, orjson.loads(value)
    except orjson.JSONDecodeError:
        return name, value


class _SourceNames:
    """The source names, looked up only when ``--source`` is checked or the help is shown: the sources
    import river's datasets and scikit-learn, which most commands (``eventml live``) do not need."""

    def _names(self) -> list[str]:
        from eventml.sources import source_names

        return source_names()

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self):
        return iter(self._names())


def build_parser() -> argparse.ArgumentParser:
    # no abbreviations: "--sasl-password X" must not be read as "--sasl-password-file X"
    parser = argparse.ArgumentParser(prog="eventml", description=__doc__.splitlines()[0].replace("``", ""),
                                     allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help, allow_abbrev=False)
        sub.set_defaults(handler=handler)
        return sub

    def with_servers(sub: argparse.ArgumentParser) -> None:
        kafka = sub.add_argument_group("Kafka connection (an option not given: its EVENTML_* environment variable)")
        kafka.add_argument("--bootstrap-servers", help="host:port[,host:port] (default: 127.0.0.1:9092)")
        kafka.add_argument("--security-protocol", type=str.upper, choices=PROTOCOLS, help="default: PLAINTEXT")
        kafka.add_argument("--sasl-mechanism", type=str.upper, choices=MECHANISMS, help="default: PLAIN")
        kafka.add_argument("--sasl-username")
        kafka.add_argument("--sasl-password-file", metavar="PATH",
                           help="file holding the SASL password (else EVENTML_SASL_PASSWORD, else a prompt)")
        kafka.add_argument("--ssl-cafile", metavar="PATH", help="PEM file of the CA certificates to trust")
        kafka.add_argument("--ssl-certfile", metavar="PATH", help="PEM client certificate")
        kafka.add_argument("--ssl-keyfile", metavar="PATH", help="PEM key of the client certificate")
        kafka.add_argument("--ssl-password-file", metavar="PATH", help="file holding the client key's password")
        kafka.add_argument("--no-ssl-check-hostname", dest="ssl_check_hostname", action="store_false", default=None,
                           help="do not check that a broker's certificate names its host")
        for refused in ("--sasl-password", "--ssl-password"):
            kafka.add_argument(refused, nargs="?", action=_NoPasswordArgument, help=argparse.SUPPRESS)

    kafka = command("kafka", _kafka, "start, stop or check the local Apache Kafka: one broker, or a cluster of\n"
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

    produce = command("produce", _produce, "write events from a seeded source to a topic")
    produce.add_argument("--source", required=True, choices=_SourceNames(), metavar="NAME",
                         help="one of: %(choices)s")
    produce.add_argument("--events", type=int, required=True, help="how many events")
    produce.add_argument("--topic", required=True)
    produce.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
    produce.add_argument("--seed", type=int, default=42)
    produce.add_argument("--drift-at", type=int, help="event index where the concept changes")
    produce.add_argument("--quiet", action="store_true", help="no progress bar")
    with_servers(produce)

    consume = command("consume", _consume, "print a topic's events, one JSON object per line")
    consume.add_argument("--topic", required=True)
    start = consume.add_mutually_exclusive_group()
    start.add_argument("--from-beginning", action="store_true")
    start.add_argument("--offset", type=int, help="start at this offset in every partition")
    start.add_argument("--timestamp", help="start at this time (epoch seconds or ISO 8601)")
    consume.add_argument("--max-events", type=int)
    consume.add_argument("--idle-timeout", type=float, default=5.0, help="seconds without a record before stopping")
    with_servers(consume)

    topics = command("topics", _topics, "list, create, delete or describe topics")
    topics.add_argument("action", choices=["list", "create", "delete", "describe"])
    topics.add_argument("name", nargs="?")
    topics.add_argument("--partitions", type=int, default=1)
    with_servers(topics)

    live = command("live", _live, "predict, publish and learn from a topic live, exactly once, resumable")
    live.add_argument("--events", required=True, help="topic of the events")
    live.add_argument("--predictions", required=True, help="topic the predictions are published to")
    live.add_argument("--labels", help="topic of labels that arrive after their events")
    live.add_argument("--model", default="river_logreg", help="learner name (default %(default)s)")
    live.add_argument("--state-dir", help="one updater, one model: its snapshots; restart with the same folder "
                                          "to resume")
    live.add_argument("--group", metavar="NAME", help="instead of --state-dir: updaters started with the same NAME "
                                                      "share the partitions, one model per partition, state in Kafka")
    live.add_argument("--scope", choices=["partition", "global"], default="partition",
                      help="with --group: one model per partition (default), or one global model kept by one "
                           "updater at a time, the others waiting as standbys")
    live.add_argument("--state-key-file", metavar="PATH",
                      help="with --group: file holding the key that authenticates the state (else EVENTML_STATE_KEY)")
    live.add_argument("--session-timeout", type=float, default=10.0,
                      help="with --group: seconds before a silent updater's partitions move (default %(default)s)")
    live.add_argument("--max-events", type=int, help="stop after this many events in total (across restarts)")
    live.add_argument("--idle-timeout", type=float, help="stop after this many seconds without a record")
    live.add_argument("--records-per-transaction", type=int, default=10_000,
                      help="records per transaction at most (default %(default)s)")
    live.add_argument("--transaction-interval", type=float, default=0.5,
                      help="seconds per transaction at most (default %(default)s)")
    live.add_argument("--label-ttl", type=float, help="seconds of event time a prediction waits for its label")
    live.add_argument("--seed", type=int, default=42)
    live.add_argument("--name", help="this updater's name (default: from the state directory, or host and process)")
    live.add_argument("--quiet", action="store_true", help="no progress bar")
    live.add_argument("--restart-on-crash", action="store_true",
                      help="with --state-dir: run the updater in a child process and start it again at once "
                           "(without import time) if a signal kills it, e.g. kill -9 or the OOM killer")
    with_servers(live)

    serve = command("serve", _serve, "serve predictions over HTTP from the model(s) live updaters committed")
    serve.add_argument("--state-dir", help="one live updater's state directory")
    serve.add_argument("--group", metavar="NAME", help="instead of --state-dir: a group of live updaters "
                                                       "(eventml live --group NAME); needs --events")
    serve.add_argument("--events", "--events-topic", dest="events_topic",
                       help="with --group: the group's events topic (each event is answered by the model of its "
                            "partition); with --state-dir --close-loop: where served events go (default: the updater's)")
    serve.add_argument("--scope", choices=["partition", "global"], default="partition",
                       help="with --group: the scope the group was started with (default %(default)s)")
    serve.add_argument("--state-key-file", metavar="PATH",
                       help="with --group: file holding the key that authenticates the state (else EVENTML_STATE_KEY)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s: this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default %(default)s)")
    serve.add_argument("--close-loop", action="store_true",
                       help="write served events (without label) and predictions back to Kafka")
    serve.add_argument("--predictions-topic", help="with --close-loop: where served predictions go (with "
                                                   "--state-dir, default: <updater's predictions>.served)")
    serve.add_argument("--poll-interval", type=float, default=0.2,
                       help="seconds between looks for a newly committed model (default %(default)s)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    with_servers(serve)

    notebooks = command("notebooks", _notebooks, "run the notebook sequence with papermill")
    notebooks.add_argument("action", choices=["run"])
    notebooks.add_argument("--notebooks-dir", default="notebooks")
    notebooks.add_argument("--output", help="output folder (default: runs/<timestamp>)")
    notebooks.add_argument("--only", nargs="*", help="notebook name prefixes to run, e.g. 01")
    notebooks.add_argument("--parameter", "-p", action="append", default=[], metavar="NAME=VALUE",
                           help="a parameter for every notebook (JSON value), repeatable")
    with_servers(notebooks)

    grid = command("grid", _grid, "run one notebook once per combination of parameter values")
    grid.add_argument("notebook", help="path of the notebook (its 'parameters' cell defines the names)")
    grid.add_argument("--grid", "-g", action="append", required=True, metavar="NAME=V1,V2,...",
                      help="values to try for one parameter (each read as JSON when possible), repeatable")
    grid.add_argument("--parameter", "-p", action="append", default=[], metavar="NAME=VALUE",
                      help="a fixed parameter for every run (JSON value), repeatable")
    grid.add_argument("--output", help="output folder (default: runs/grid/<timestamp>)")
    with_servers(grid)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "action", None) in ("create", "delete", "describe") and args.command == "topics" and not args.name:
        parser.error(f"topics {args.action} needs a topic name")
    if args.command == "consume" and args.timestamp is not None:
        try:
            args.timestamp = float(args.timestamp)
        except ValueError:
            pass
    return _exit_code(args.handler, args)


def _exit_code(handler: Any, args: argparse.Namespace) -> int:
    """Run a command; its exit code, with eventml's errors as one sentence (2) and Ctrl-C as 130."""
    try:
        return handler(args)
    except EventmlError as error:
        print(f"eventml: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
