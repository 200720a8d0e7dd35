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

Each family of commands is a module here: ``broker`` (``kafka``), ``topics`` (``produce``, ``consume``,
``topics``), ``live``, ``serve`` and ``notebooks`` (``notebooks``, ``grid``); ``common`` holds what they share.
"""

from __future__ import annotations

import argparse

from eventml.cli import broker, live, notebooks, serve, topics
from eventml.cli.common import exit_code


def build_parser() -> argparse.ArgumentParser:
    # no abbreviations: "--sasl-password X" must not be read as "--sasl-password-file X"
    parser = argparse.ArgumentParser(prog="eventml", description=__doc__.splitlines()[0].replace("``", ""),
                                     allow_abbrev=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for family in (broker, topics, live, serve, notebooks):
        family.add_commands(commands)
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
    return exit_code(args.handler, args)

