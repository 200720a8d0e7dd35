"""The live updater's per-record work without Kafka, against the model alone, in one run.

Five contenders on the same SEA events (already encoded as the wire format), each predicting
then learning every event, with the order of contenders reversed every round:

- ``river``: the river model itself (``learner.model``, no eventml wrapper), ``predict_proba_one``
  then ``learn_one`` on decoded features: the strongest denominator;
- ``model``: the eventml learner alone (:func:`eventml.learners.make_learner`, the same river model
  behind eventml's wrapper, which drops nulls and one-hot encodes strings), the same calls;
- ``scorer``: :class:`eventml.scoring.Scorer` (predict, the live metrics: accuracy and log loss,
  cumulative and rolling, learn) on decoded features;
- ``processor``: :class:`eventml.live.processor.RecordProcessor` on the encoded records: decode,
  validate, predict, score, learn, encode the prediction, hand it to ``send``, in runs of
  ``MAX_RUN`` records (``RecordProcessor.events``), as the live updater hands over records that are
  already fetched. The timed ``send`` lets the bytes go, as a producer does once it has copied them;
  an untimed run keeps them, and they are decoded and checked (and equal to one-by-one's);
- ``one_by_one``: the same, one record at a time (``RecordProcessor.event``), as the updater works
  when records arrive one by one.

Everything each contender predicts is checked equal. Reported as events/s and as ratios to the
model alone and to river alone, so the cost of eventml's own bookkeeping per record is visible
(issue 11). ``--clock cpu`` times CPU seconds of this process instead of wall seconds: steadier on
a machine shared with other work.

Usage: ``python benchmarks/bench_record_path.py [--events 100000] [--rounds 3] [--model river_logreg]
[--clock wall|cpu] [--profile]``
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import pstats
import statistics
import time
from pathlib import Path

import eventml as em
from confluent_kafka import Message
from eventml.learners import make_learner
from eventml.live.processor import MAX_RUN, RecordProcessor
from eventml.live.state import UpdaterState
from eventml.scoring import Scorer

METRICS = ["accuracy", "log_loss"]  # what the live updater tracks for a classifier
ROLLING = 500


def records(events: list[em.Event]) -> list:
    """What a consumer hands the processor: confluent-kafka ``Message`` objects (value, key, topic,
    partition, offset, timestamp), as ``consume()`` returns them."""
    return [Message(topic="events", partition=0, offset=offset, key=event.id.encode(),
                    value=em.events.encode_event(event), timestamp=(1, 1_764_000_000_000 + offset))
            for offset, event in enumerate(events)]


def predict_learn(model, events: list[em.Event]) -> list:
    """Predict then learn each event with ``model``; the predicted labels."""
    out = []
    for event in events:
        proba = model.predict_proba_one(event.features)
        out.append(max(proba, key=proba.get) if proba else None)
        model.learn_one(event.features, event.label)
    return out


def run_river(name: str, events: list[em.Event]) -> list:
    return predict_learn(make_learner(name).model, events)


def run_model(name: str, events: list[em.Event]) -> list:
    return predict_learn(make_learner(name), events)


def run_scorer(name: str, events: list[em.Event]) -> list:
    scorer = Scorer(make_learner(name), METRICS, ROLLING)
    out = []
    for event in events:
        label, proba = scorer.predict(event.features)
        out.append(label)
        scorer.update(event.label, label, proba)
        scorer.learner.learn_one(event.features, event.label)
    return out


def processor_predictions(name: str, recs: list, keep: bool, run: int = MAX_RUN) -> list:
    """Run a RecordProcessor over the records, in runs of ``run`` as the live updater hands them over when
    they are there (1: one at a time); the encoded predictions if ``keep``, else their count."""
    sent = []
    state = UpdaterState.fresh(make_learner(name), METRICS, ROLLING)
    if keep:
        def send(topic, value, key, partition=-1, headers=None):
            sent.append(value)
            return True
    else:
        def send(topic, value, key, partition=-1, headers=None):
            return True
    processor = RecordProcessor(state, "predictions", send)
    if run == 1:
        for record in recs:
            processor.event(record)
    else:
        for start in range(0, len(recs), run):
            processor.events(recs[start:start + run])
    return sent if keep else [state.counts["events"]]


def run_processor(name: str, recs: list) -> list:
    return processor_predictions(name, recs, keep=False)


def run_record_by_record(name: str, recs: list) -> list:
    return processor_predictions(name, recs, keep=False, run=1)


def without_ts(value: bytes) -> dict:
    """A prediction without the time it was made at."""
    prediction = json.loads(value)
    del prediction["ts"]
    return prediction


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def timed(clock, function, *args) -> tuple[float, list]:
    gc.collect()
    started = clock()
    out = function(*args)
    return clock() - started, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="river_logreg")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall seconds, or CPU seconds of this process (steadier on a shared machine)")
    parser.add_argument("--profile", action="store_true", help="also print where the processor spends its time")
    parser.add_argument("--output", default="benchmarks/results")
    args = parser.parse_args()

    events = list(em.synthetic("sea", args.events, seed=42))
    recs = records(events)
    clock = CLOCKS[args.clock]
    contenders = {"river": (run_river, events), "model": (run_model, events), "scorer": (run_scorer, events),
                  "processor": (run_processor, recs), "one_by_one": (run_record_by_record, recs)}
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(args.rounds):
        order = list(contenders) if round_ % 2 == 0 else list(reversed(contenders))
        predictions = {}
        for name in order:
            function, data = contenders[name]
            elapsed, predictions[name] = timed(clock, function, args.model, data)
            seconds[name].append(elapsed)
        assert predictions["river"] == predictions["model"] == predictions["scorer"], "contenders disagree"
        assert predictions["processor"] == predictions["one_by_one"] == [args.events], \
            "the processor did not publish every prediction"
    published = processor_predictions(args.model, recs, keep=True)  # untimed: the bytes, decoded and checked
    one_by_one = processor_predictions(args.model, recs, keep=True, run=1)
    assert [without_ts(value) for value in published] == [without_ts(value) for value in one_by_one], \
        "runs change the predictions"
    assert [em.events.decode_prediction(value).prediction for value in published] == predictions["model"], \
        "the processor's predictions differ"

    rates = {name: args.events / statistics.median(values) for name, values in seconds.items()}
    print(f"{args.events} SEA events, {args.model}, predict then learn each, median of {args.rounds} rounds, "
          f"{args.clock} clock")
    for name, rate in rates.items():
        print(f"  {name:<10} {rate:>10,.0f} events/s  {1e6 / rate:6.2f} us/event   "
              f"{rate / rates['model']:.2f}x the model alone   {rate / rates['river']:.2f}x river alone")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_record_path.json").write_text(json.dumps(
        {"events": args.events, "model": args.model, "rounds": args.rounds, "clock": args.clock,
         "events_per_s": rates, "ratio_to_model": {name: rate / rates["model"] for name, rate in rates.items()},
         "ratio_to_river": {name: rate / rates["river"] for name, rate in rates.items()}}, indent=1))

    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(run_processor, args.model, recs)
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(15)
        print(text.getvalue())


if __name__ == "__main__":
    main()
