"""The Quix Streams contender of ``bench_live.py``: predict then learn per event, one prediction out.

Runs in its own venv (``benchmarks/.venv-quix``, from ``benchmarks/requirements-quix.txt``), never
with eventml: quixstreams pins its own confluent-kafka. It is the loop a Quix Streams user would
write for eventml's job: an :class:`quixstreams.Application` reading the events topic (JSON, Quix's
own orjson deserializer), a StreamingDataFrame ``apply`` that holds river's
``StandardScaler() | LogisticRegression()`` in a Python object (eventml's ``river_logreg`` builds the
same pipeline; neither step is random, so no seed), predicts each event's probabilities, takes the
most probable label, learns the event's label, and returns the prediction in eventml's wire format,
which ``to_topic`` publishes keyed by the input key (the event id).

Two modes, by ``--guarantee``:

- ``exactly-once`` (throughput): ``processing_guarantee="exactly-once"`` (a transactional producer
  and a ``read_committed`` consumer; Quix commits its checkpoint, outputs and offsets in one
  transaction), a checkpoint every ``--commit-every`` records or ``--commit-interval`` seconds,
  whichever comes first; stops after ``--events`` outputs.
- ``at-least-once`` (latency): Quix's defaults, as a user runs it; stops after ``--events`` outputs
  or on SIGTERM.

Prints one JSON line on stdout at the end: the wall-clock times (epoch seconds) of the start of
``app.run``, of the ``--mark``-th and the last event processed and of ``app.run``'s return (its last
commit done),
the events processed, and the library versions.

Usage: ``.venv-quix/bin/python contenders/quix_loop.py --bootstrap-servers HOST:PORT --input T
--output T.pred --events 100000 --mark 10000 --group G [--guarantee exactly-once]``
"""

from __future__ import annotations

import argparse
import json
import logging
import time

started_at = time.time()

import confluent_kafka  # noqa: E402
import quixstreams  # noqa: E402
import river  # noqa: E402
from quixstreams import Application  # noqa: E402
from river import linear_model, preprocessing  # noqa: E402

MODEL = "river_logreg"


class OnlineModel:
    """The model in a Python object: predict, then learn from the event's label."""

    def __init__(self, mark: int):
        self.model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
        self.learned = 0
        self.events = 0
        self.mark = mark
        self.marked_at: float | None = None
        self.last_at: float | None = None

    def __call__(self, value: dict, key, timestamp: int, headers) -> dict:
        x, y = value["features"], value.get("label")
        proba = self.model.predict_proba_one(x)
        label = max(proba, key=proba.get) if proba else None
        event_ts = value.get("ts")
        out = {"id": value["id"], "prediction": label, "proba": {str(k): p for k, p in proba.items()},
               "model": MODEL, "model_version": self.learned,
               "event_ts": timestamp / 1000.0 if event_ts is None else event_ts, "ts": time.time()}
        if y is not None:
            self.model.learn_one(x, y)
            self.learned += 1
        self.events += 1
        if self.events == self.mark:
            self.marked_at = time.time()
        self.last_at = time.time()
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--events", type=int, required=True, help="stop after this many predictions")
    parser.add_argument("--mark", type=int, default=0, help="report when this many events were processed")
    parser.add_argument("--guarantee", choices=["exactly-once", "at-least-once"], default="exactly-once")
    parser.add_argument("--commit-every", type=int, default=10_000)
    parser.add_argument("--commit-interval", type=float, default=0.5)
    parser.add_argument("--idle-timeout", type=float, default=60.0, help="stop when nothing arrived for this long")
    args = parser.parse_args()

    logging.getLogger("quixstreams").setLevel(logging.WARNING)
    options = {}
    if args.guarantee == "exactly-once":
        options = {"commit_every": args.commit_every, "commit_interval": args.commit_interval}
    app = Application(broker_address=args.bootstrap_servers, consumer_group=args.group,
                      auto_offset_reset="earliest", processing_guarantee=args.guarantee, loglevel="WARNING",
                      use_changelog_topics=False, **options)
    events = app.topic(args.input, value_deserializer="json")
    predictions = app.topic(args.output, value_serializer="json")
    model = OnlineModel(args.mark)
    sdf = app.dataframe(events)
    sdf = sdf.apply(model, metadata=True)
    sdf.to_topic(predictions)
    run_at = time.time()
    app.run(count=args.events, timeout=args.idle_timeout, collect=False)
    ended_at = time.time()
    print(json.dumps({
        "guarantee": args.guarantee, "events": model.events, "learned": model.learned,
        "started_at": started_at, "run_at": run_at, "marked_at": model.marked_at,
        "last_at": model.last_at, "ended_at": ended_at,
        "quixstreams": quixstreams.__version__, "confluent_kafka": confluent_kafka.__version__,
        "librdkafka": confluent_kafka.libversion()[0], "river": river.__version__,
    }), flush=True)


if __name__ == "__main__":
    main()
