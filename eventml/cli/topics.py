"""``eventml produce``, ``consume`` and ``topics``: events into a topic and back out, and the topics themselves."""

from __future__ import annotations

import argparse
import sys

import orjson

from eventml.cli.common import add_command, kafka_settings, with_servers


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


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Adds this module's commands to ``eventml``'s sub-parsers."""
    produce = add_command(commands, "produce", _produce, "write events from a seeded source to a topic")
    produce.add_argument("--source", required=True, choices=_SourceNames(), metavar="NAME",
                         help="one of: %(choices)s")
    produce.add_argument("--events", type=int, required=True, help="how many events")
    produce.add_argument("--topic", required=True)
    produce.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
    produce.add_argument("--seed", type=int, default=42)
    produce.add_argument("--drift-at", type=int, help="event index where the concept changes")
    produce.add_argument("--quiet", action="store_true", help="no progress bar")
    with_servers(produce)

    consume = add_command(commands, "consume", _consume, "print a topic's events, one JSON object per line")
    consume.add_argument("--topic", required=True)
    start = consume.add_mutually_exclusive_group()
    start.add_argument("--from-beginning", action="store_true")
    start.add_argument("--offset", type=int, help="start at this offset in every partition")
    start.add_argument("--timestamp", help="start at this time (epoch seconds or ISO 8601)")
    consume.add_argument("--max-events", type=int)
    consume.add_argument("--idle-timeout", type=float, default=5.0, help="seconds without a record before stopping")
    with_servers(consume)

    topics = add_command(commands, "topics", _topics, "list, create, delete or describe topics")
    topics.add_argument("action", choices=["list", "create", "delete", "describe"])
    topics.add_argument("name", nargs="?")
    topics.add_argument("--partitions", type=int, default=1)
    with_servers(topics)
