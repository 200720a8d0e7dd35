"""``eventml serve``: predictions over HTTP from the model a live updater committed."""

from __future__ import annotations

import argparse

from eventml.cli.common import add_command, kafka_settings, with_servers


def _serve(args: argparse.Namespace) -> int:
    from eventml.serve.server import run_in_foreground

    run_in_foreground(args.state_dir, kafka_settings(args), host=args.host, port=args.port,
                      close_loop=args.close_loop, events_topic=args.events_topic,
                      predictions_topic=args.predictions_topic, poll_interval_s=args.poll_interval,
                      log_level=args.log_level)
    return 0


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds this module's commands to ``eventml``'s sub-parsers."""
    serve = add_command(commands, "serve", _serve,
                        "serve predictions over HTTP from the model a live updater committed")
    serve.add_argument("--state-dir", required=True, help="the live updater's state directory")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s: this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default %(default)s)")
    serve.add_argument("--close-loop", action="store_true",
                       help="write served events (without label) and predictions back to Kafka")
    serve.add_argument("--events-topic", help="with --close-loop: where served events go (default: the updater's)")
    serve.add_argument("--predictions-topic",
                       help="with --close-loop: where served predictions go (default: <updater's predictions>.served)")
    serve.add_argument("--poll-interval", type=float, default=0.2,
                       help="seconds between looks for a newly committed model (default %(default)s)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    with_servers(serve)
