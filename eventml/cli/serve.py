"""``eventml serve``: predictions over HTTP from the model(s) live updaters committed."""

from __future__ import annotations

import argparse

from eventml.cli.common import add_command, kafka_settings, secret, with_servers


def _serve(args: argparse.Namespace) -> int:
    from eventml.service.server import run_in_foreground

    run_in_foreground(args.state_dir, kafka_settings(args), host=args.host, port=args.port, group=args.group,
                      events_topic=args.events_topic, scope=args.scope,
                      state_key=secret(args.state_key_file, "--state-key-file"), key=args.key,
                      close_loop=args.close_loop, predictions_topic=args.predictions_topic,
                      poll_interval_s=args.poll_interval, log_level=args.log_level)
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds this module's commands to ``eventml``'s sub-parsers."""
    serve = add_command(commands, "serve", _serve,
                        "serve predictions over HTTP from the model(s) live updaters committed")
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
    serve.add_argument("--key", metavar="FEATURE",
                       help="the feature the events are keyed by (em.produce(..., key=FEATURE)): with --group, each "
                            "request is answered by the model of the partition of its value (of its id without it); "
                            "with --close-loop, served events are keyed by it")
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
