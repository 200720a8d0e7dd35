"""Several models in one live updater, side by side with one updater per model and with the models alone.

Three learners (``river_logreg``, ``river_gnb``, ``river_hoeffding`` by default) on the same SEA events,
in one run, the order of the contenders reversed every round:

(a) **Kafka**, against a real broker (one partition, events written once): ``one``: one
    :class:`eventml.live.LiveUpdater` with ``models=[...]`` (the first the champion, the others
    challengers, no promotion); ``apart``: one single-model ``LiveUpdater`` per model, one after the
    other on the same events (what a user does without ``models=``: each reads and decodes every event,
    each with its own transactions and snapshots). Both with the updater's defaults. Reported: model-events
    per second (events x models / wall time, from connecting to the last commit) and one/apart (goal >= 2).
(b) **The per-record path, without Kafka**: ``processor``: :class:`eventml.live.processor.RecordProcessor`
    with the three models on the encoded records, in runs of ``MAX_RUN`` (decode once, predict, learn,
    score, encode each model's prediction, hand it to ``send``); ``alone``: the three models in memory,
    ``predict_proba_one``, the most probable label and ``learn_one`` of each, on decoded features, nothing
    else. Reported: model-events per second and processor/alone (goal >= 0.8).

Every contender's predictions are checked: each model's labels equal the model alone's. ``--clock cpu``
times (b) in CPU seconds of this process (steadier on a shared machine).

Usage: ``python benchmarks/bench_models.py [--events 20000] [--rounds 3] [--models a,b,c or x=a,y=a,z=a]
[--parts kafka,path]
[--clock wall|cpu] [--bootstrap-servers HOST:PORT]`` (without a bootstrap address a local broker is started in a
temporary folder). Writes ``benchmarks/results/bench_models.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import eventml as em
from eventml.kafka import kafka_for
from eventml.learners import make_learner
from eventml.live import LiveUpdater
from eventml.live.processor import MAX_RUN, RecordProcessor
from eventml.live.state import UpdaterState

from bench_record_path import records

METRICS = ["accuracy", "log_loss"]  # what the live updater tracks for a classifier
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def learners(names: dict[str, str]) -> list:
    return [make_learner(learner, name=name) for name, learner in names.items()]


def alone(names: dict[str, str], events: list) -> dict[str, list]:
    """Each model in memory: predict then learn each event; the predicted labels, by model."""
    models = learners(names)
    out = {name: [] for name in names}
    for model, name in zip(models, names):
        labels = out[name]
        for event in events:
            x = event.features
            proba = model.predict_proba_one(x)
            labels.append(max(proba, key=proba.get) if proba else None)
            model.learn_one(x, event.label)
    return out


def processor(names: list[str], recs: list, keep: bool = False) -> list[bytes]:
    """The models in one RecordProcessor, in runs of MAX_RUN; the predictions it sent if ``keep`` (timed: the
    bytes go, as a producer lets them go once it has copied them)."""
    sent: list = []

    def send(topic, value, key, partition=-1, headers=None):
        if keep:
            sent.append(value)
        return True

    state = UpdaterState.fresh(learners(names), METRICS, 500)
    proc = RecordProcessor(state, "predictions", send)
    for start in range(0, len(recs), MAX_RUN):
        proc.events(recs[start:start + MAX_RUN])
    return sent


def labels_by_model(names: list[str], sent: list[bytes]) -> dict[str, list]:
    out: dict[str, list] = {name: [] for name in names}
    for value in sent:
        prediction = em.events.decode_prediction(value)
        out[prediction.model].append(prediction.prediction)
    return out


def timed(clock, function, *args):
    gc.collect()
    started = clock()
    out = function(*args)
    return clock() - started, out


def path_part(names, events, rounds, clock_name):
    clock = CLOCKS[clock_name]
    recs = records(events)
    seconds = {"processor": [], "alone": []}
    for round_ in range(rounds):
        order = ["processor", "alone"] if round_ % 2 == 0 else ["alone", "processor"]
        got = {}
        for name in order:
            elapsed, got[name] = timed(clock, processor if name == "processor" else alone, names,
                                       recs if name == "processor" else events)
            seconds[name].append(elapsed)
    assert labels_by_model(names, processor(names, recs, keep=True)) == got["alone"], \
        "the processor's predictions differ from the models alone"
    total = len(events) * len(names)
    rates = {name: total / statistics.median(values) for name, values in seconds.items()}
    return {"model_events_per_s": rates, "processor_over_alone": rates["processor"] / rates["alone"],
            "rounds": {name: values for name, values in seconds.items()}}


def live_run(servers, topic, names, n, folder, together: bool) -> tuple[float, dict[str, list]]:
    """Wall seconds and each model's committed predicted labels (in event order)."""
    started = time.perf_counter()
    out = {}
    runs = [list(names)] if together else [[name] for name in names]
    for models in runs:
        predictions = f"{topic}.{uuid.uuid4().hex[:6]}"
        LiveUpdater(topic, predictions, models={name: names[name] for name in models},
                    state_dir=folder / predictions, bootstrap_servers=servers, max_events=n).run()
        out[predictions] = models
    elapsed = time.perf_counter() - started
    labels = {}
    for predictions, models in out.items():
        df = em.read_predictions(predictions, challengers=len(models) > 1, bootstrap_servers=servers,
                                 idle_timeout_s=10)
        for name in models:
            rows = df[df["model"] == name].sort_values("offset")
            labels[name] = [None if p != p else p for p in rows["prediction"]]  # NaN: no prediction yet
    return elapsed, labels


def kafka_part(names, events, rounds, servers):
    topic = f"bench-models-{uuid.uuid4().hex[:8]}"
    em.produce(events, topic, bootstrap_servers=servers)
    expected = alone(names, events)
    seconds = {"one": [], "apart": []}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(rounds):
            order = ["one", "apart"] if round_ % 2 == 0 else ["apart", "one"]
            for name in order:
                elapsed, labels = live_run(servers, topic, names, len(events), Path(folder), name == "one")
                for model in names:
                    assert labels[model] == expected[model], f"{name}: {model}'s predictions differ"
                seconds[name].append(elapsed)
    total = len(events) * len(names)
    rates = {name: total / statistics.median(values) for name, values in seconds.items()}
    return {"model_events_per_s": rates, "one_over_apart": rates["one"] / rates["apart"],
            "rounds": {name: values for name, values in seconds.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default="river_logreg,river_gnb,river_hoeffding",
                        help="learner names, or NAME=LEARNER to run one learner several times under other names")
    parser.add_argument("--parts", default="kafka,path")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    parser.add_argument("--bootstrap-servers")
    parser.add_argument("--output", default="benchmarks/results")
    args = parser.parse_args()
    names = dict(item.split("=", 1) if "=" in item else (item, item) for item in args.models.split(","))
    events = list(em.synthetic("sea", args.events, seed=42))
    result = {"events": args.events, "models": names, "rounds": args.rounds}
    assert len(names) == len(args.models.split(",")), "model names must be unique (NAME=LEARNER renames)"
    parts = args.parts.split(",")
    print(f"{args.events} SEA events, models {', '.join(f'{k}={v}' for k, v in names.items())}, "
          f"median of {args.rounds} rounds")
    if "path" in parts:
        path = result["path"] = path_part(names, events, args.rounds, args.clock)
        rates = path["model_events_per_s"]
        print(f"(b) per-record path ({args.clock} clock): processor {rates['processor']:,.0f} model-events/s, "
              f"the models alone {rates['alone']:,.0f}: {path['processor_over_alone']:.2f}x")
    if "kafka" in parts:
        with kafka_for(args.bootstrap_servers) as servers:
            kafka = result["kafka"] = kafka_part(names, events, args.rounds, servers)
        rates = kafka["model_events_per_s"]
        print(f"(a) Kafka: one updater with {len(names)} models {rates['one']:,.0f} model-events/s, "
              f"{len(names)} updaters one after the other {rates['apart']:,.0f}: {kafka['one_over_apart']:.2f}x")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_models.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
