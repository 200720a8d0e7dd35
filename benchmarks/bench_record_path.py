"""The live updater's per-record work without Kafka, against the model alone, in one run.

Three contenders on the same SEA events (already encoded as the wire format), each predicting
then learning every event, with the order of contenders reversed every round:

- ``model``: the learner alone, ``predict_proba_one`` then ``learn_one`` on decoded features;
- ``scorer``: :class:`eventml.scoring.Scorer` (predict, the live metrics: accuracy and log loss,
  cumulative and rolling, learn) on decoded features;
- ``processor``: :class:`eventml.live.processor.RecordProcessor` on the encoded records, with a
  ``send`` that keeps the bytes: decode, validate, predict, score, learn, encode the prediction.

Everything each contender predicts is checked equal. Reported as events/s and as ratios to the
model alone, so the cost of eventml's own bookkeeping per record is visible (issue 11).

Usage: ``python benchmarks/bench_record_path.py [--events 100000] [--rounds 3] [--model river_logreg]
[--profile]``
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
from types import SimpleNamespace

import eventml as em
from eventml.learners import make_learner
from eventml.live.processor import RecordProcessor
from eventml.live.state import UpdaterState
from eventml.scoring import Scorer

METRICS = ["accuracy", "log_loss"]  # what the live updater tracks for a classifier
ROLLING = 500


def records(events: list[em.Event]) -> list[SimpleNamespace]:
    """What a consumer hands the processor: value, key, topic, partition, offset, timestamp."""
    out = []
    for offset, event in enumerate(events):
        value, key = em.encode_event(event), event.id.encode()
        out.append(SimpleNamespace(value=lambda v=value: v, key=lambda k=key: k, topic=lambda: "events",
                                   partition=lambda: 0, offset=lambda o=offset: o,
                                   timestamp=lambda o=offset: (1, 1_764_000_000_000 + o)))
    return out


def run_model(name: str, events: list[em.Event]) -> list:
    learner = make_learner(name)
    out = []
    for event in events:
        proba = learner.predict_proba_one(event.features)
        out.append(max(proba, key=proba.get) if proba else None)
        learner.learn_one(event.features, event.label)
    return out


def run_scorer(name: str, events: list[em.Event]) -> list:
    scorer = Scorer(make_learner(name), METRICS, ROLLING)
    out = []
    for event in events:
        label, proba = scorer.predict(event.features)
        out.append(label)
        scorer.update(event.label, label, proba)
        scorer.learner.learn_one(event.features, event.label)
    return out


def run_processor(name: str, recs: list[SimpleNamespace]) -> list:
    sent = []
    state = UpdaterState.fresh(make_learner(name), METRICS, ROLLING)
    processor = RecordProcessor(state, name, "predictions", lambda topic, value, key, partition=-1, headers=None:
                                sent.append(value) or True)
    for record in recs:
        processor.event(record)
    return sent  # the encoded predictions, decoded after the clock stops


def timed(function, *args) -> tuple[float, list]:
    gc.collect()
    started = time.perf_counter()
    out = function(*args)
    return time.perf_counter() - started, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="river_logreg")
    parser.add_argument("--profile", action="store_true", help="also print where the processor spends its time")
    parser.add_argument("--output", default="benchmarks/results")
    args = parser.parse_args()

    events = list(em.synthetic("sea", args.events, seed=42))
    recs = records(events)
    contenders = {"model": (run_model, events), "scorer": (run_scorer, events), "processor": (run_processor, recs)}
    seconds: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(args.rounds):
        order = list(contenders) if round_ % 2 == 0 else list(reversed(contenders))
        predictions = {}
        for name in order:
            function, data = contenders[name]
            elapsed, predictions[name] = timed(function, args.model, data)
            seconds[name].append(elapsed)
        predictions["processor"] = [em.events.decode_prediction(value).prediction for value in predictions["processor"]]
        assert predictions["model"] == predictions["scorer"] == predictions["processor"], "contenders disagree"

    rates = {name: args.events / statistics.median(values) for name, values in seconds.items()}
    print(f"{args.events} SEA events, {args.model}, predict then learn each, median of {args.rounds} rounds")
    for name, rate in rates.items():
        print(f"  {name:<10} {rate:>10,.0f} events/s   {rate / rates['model']:.2f}x the model alone")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_record_path.json").write_text(json.dumps(
        {"events": args.events, "model": args.model, "rounds": args.rounds, "events_per_s": rates,
         "ratio_to_model": {name: rate / rates["model"] for name, rate in rates.items()}}, indent=1))

    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(run_processor, args.model, recs)
        text = io.StringIO()
        pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(15)
        print(text.getvalue())


if __name__ == "__main__":
    main()
