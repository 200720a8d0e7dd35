"""``eventml live``: predict, publish and learn from a topic live, one updater or a group of them."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
from typing import Any, Iterator

from eventml.cli.common import add_command, exit_code, kafka_settings, secret, with_servers
from eventml.errors import ConfigError


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


def _promotion(args: argparse.Namespace) -> Any:
    if args.promote is None:
        return None
    from eventml.promotion import Promotion

    return Promotion(metric=args.promote, window=args.promote_window, margin=args.promote_margin,
                     min_labels=args.promote_min_labels)


def _live(args: argparse.Namespace) -> int:
    args.model = args.model or ["river_logreg"]
    if (args.state_dir is None) == (args.group is None):
        raise ConfigError("eventml live needs --state-dir (one updater, one global model) or --group NAME "
                          "(updaters sharing the partitions, state in Kafka), not both")
    if args.group is not None and args.name is None:
        # one name for every (re)start of the process: a restarted member fences the killed one at once
        args.name = f"{socket.gethostname()}-{os.getpid()}"
    if args.restart_on_crash:
        import importlib

        from eventml.learners import make_learner
        from eventml.live.supervise import run_restarting

        # imported once, before the fork: what a restart no longer waits for
        for module in ("eventml.live.updater", "eventml.live.group", "eventml.progress"):
            importlib.import_module(module)
        for model in args.model:
            make_learner(model)  # the model's libraries
        return run_restarting(lambda: exit_code(_live_updater, args))
    return _live_updater(args)


def _live_updater(args: argparse.Namespace) -> int:
    from eventml.lazy import defer_package_inits
    from eventml.live.clients import restart_clients_early

    # a river model imports its own modules, not the rest of river (scikit-learn, pandas, SciPy's statistics):
    # a restart's first prediction a second sooner
    defer_package_inits("river")
    settings = kafka_settings(args)
    early = None
    if args.state_dir is not None:
        # a restart makes its Kafka clients (aborting what a killed run left open first) while the model's
        # libraries are imported; the wanted fields are read_identity's
        early = restart_clients_early(args.state_dir, settings, {
            "events_topic": args.events, "labels_topic": args.labels, "predictions_topic": args.predictions,
            "model": ",".join(args.model)}, args.name, setup_timeout_s=60.0)
    try:
        from eventml.alerts import parse_alert
        from eventml.live import LiveUpdater
        from eventml.windows import parse_window

        where = ({"state_dir": args.state_dir} if args.group is None else
                 {"group": args.group, "scope": args.scope, "session_timeout_s": args.session_timeout,
                  "state_key": secret(args.state_key_file, "--state-key-file")})
        updater = LiveUpdater(args.events, args.predictions, models=args.model, promotion=_promotion(args), **where,
                              labels_topic=args.labels, kafka=settings,
                              max_events=args.max_events, idle_timeout_s=args.idle_timeout,
                              records_per_transaction=args.records_per_transaction, transaction_interval_s=args.transaction_interval,
                              label_ttl_s=args.label_ttl, name=args.name, seed=args.seed, progress=not args.quiet,
                              windows=[parse_window(text) for text in args.window],
                              metrics_port=args.metrics_port, metrics_host=args.metrics_host,
                              alerts=[parse_alert(text) for text in args.alert])
    except BaseException:
        if early is not None:
            early.discard()
        raise
    if early is not None:
        updater.use_clients(early)
    if updater.metrics_url:
        print(f"live: Prometheus metrics at {updater.metrics_url}", file=sys.stderr, flush=True)
    with _stop_on_signals(updater):
        s = updater.run()
    score = "n/a" if s.score is None else f"{s.score:.4f}"
    champions = updater.champions()  # a group member's partitions may each have promoted another model
    model = updater.champion if len(set(champions.values())) <= 1 else ", ".join(
        f"{name} in partition {number}" for number, name in champions.items())
    figures = (f"{s.labelled} learned (model {model} v{s.model_version}), {s.metric} {score}, "
               f"{s.dead_letters} dead letters, {s.expired} expired, {s.late} late and {s.unknown_id} unknown labels, "
               f"{s.restarts} restarts, {s.transactions} transactions")
    if args.group is None:
        print(f"live: {s.events} events predicted, {figures}; state in {args.state_dir}")
    else:
        changes = sum(row["event"] == "assigned" for row in updater.assignments)
        print(f"live group {args.group!r}: updater {updater.name} predicted {s.session_events} events; its "
              f"partitions {list(s.partitions)} ({changes} assignments) have {s.events} events predicted, {figures}")
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds this module's commands to ``eventml``'s sub-parsers."""
    live = add_command(commands, "live", _live, "predict, publish and learn from a topic live, exactly once, resumable")
    live.add_argument("--events", required=True, help="topic of the events")
    live.add_argument("--predictions", required=True, help="topic the predictions are published to")
    live.add_argument("--labels", help="topic of labels that arrive after their events")
    live.add_argument("--model", action="append", metavar="NAME",
                      help="learner name (default river_logreg); repeat it for several models in one updater: the "
                           "first is the champion (the predictions topic), the others challengers "
                           "(<predictions>.challengers)")
    live.add_argument("--promote", metavar="METRIC",
                      help="with several --model: promote a challenger whose rolling METRIC (e.g. accuracy) beats "
                           "the champion's; promotions go to <predictions>.champions (default: never, shadow only)")
    live.add_argument("--promote-window", type=int, default=500,
                      help="with --promote: scored labels in each model's rolling figure (default %(default)s)")
    live.add_argument("--promote-margin", type=float, default=0.02,
                      help="with --promote: how much better the challenger must be (default %(default)s)")
    live.add_argument("--promote-min-labels", type=int, default=200,
                      help="with --promote: labels since the last change before a promotion (default %(default)s)")
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
    live.add_argument("--window", action="append", default=[], metavar="KEY:ON:AGG[,AGG]:SPAN[:opt=value]",
                      help="windowed features per key, added before the model predicts (repeat for more), e.g. "
                           "user:amount:count,mean:10min, user:-:since_last:last1, "
                           "card:amount:max:1h:kind=hopping:hop=10min (options kind, hop, lateness, ttl, target=1)")
    live.add_argument("--seed", type=int, default=42)
    live.add_argument("--name", help="this updater's name (default: from the state directory, or host and process)")
    live.add_argument("--quiet", action="store_true", help="no progress bar")
    live.add_argument("--metrics-port", type=int, metavar="PORT",
                      help="serve Prometheus metrics at http://HOST:PORT/metrics while the updater runs")
    live.add_argument("--metrics-host", default="127.0.0.1",
                      help="with --metrics-port: the address to bind (default %(default)s: this machine only)")
    live.add_argument("--alert", action="append", default=[], metavar="RULE",
                      help="an alert rule (repeat for more); each crossing is a record on <predictions>.alerts: "
                           "accuracy<0.8:200 (rolling accuracy below 0.8 for 200 labels; @MODEL: that model's, "
                           "default the champion's), log_loss>0.6:200, drift:adwin, lag>10000, dead_letters>5/1000")
    live.add_argument("--restart-on-crash", action="store_true",
                      help="run the updater in a child process and start it again at once (without import "
                           "time) if a signal kills it, e.g. kill -9 or the OOM killer; a group member restarts "
                           "under the same name, fencing the killed one")
    with_servers(live)
