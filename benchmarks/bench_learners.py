"""Learner throughput: prequential events/s in memory and over a Kafka replay, and scikit-learn
``partial_fit`` through eventml against calling it directly, in one run.

(a) For each learner, :func:`eventml.prequential` (all the task's metrics, no memory
    measurement) over the same events twice: from a list in memory, and replayed from a
    Kafka topic they were produced to once (``em.prequential(em.replay(topic), learner)``,
    the consumer's start-up included). The final metrics of the two passes must be equal
    (same events, same order). ``replay_ratio`` = replay events/s / memory events/s. The
    replay alone (reading and decoding without a learner) is timed too, to show what the
    topic costs by itself.

(b) ``sgd_logreg`` (scaled ``SGDClassifier(loss="log_loss")`` in micro-batches of 32) through
    :class:`eventml.learners.MicroBatchPartialFit` against the same scikit-learn calls made directly on
    NumPy arrays built once from the events (the way a scikit-learn user holds data):

    - ``learn``: ``learn_one`` for every event vs ``StandardScaler.partial_fit`` +
      ``SGDClassifier.partial_fit`` on the same micro-batches;
    - ``test_then_train``: ``predict_proba_one`` then ``learn_one`` per event (prequential
      without the metrics) vs the direct loop that also predicts each event alone
      (``predict_proba`` on one row) before its micro-batch is learnt. This is the fair pair:
      the same calls in the same order, and the same probabilities (checked);
    - ``direct_batch_predict``: the direct loop predicting a whole micro-batch in one call
      before learning it. The predictions are identical (the model changes only between
      micro-batches) but a stream cannot know the next 32 events in advance; it shows what
      predicting one event at a time costs in scikit-learn itself.

Events/s are medians over the rounds. Ratios (eventml / direct, replay / memory; 1.0 = as
fast) are the median of the per-round ratios, each from two passes run back to back, with
their range over the rounds: on a shared machine the load changes between rounds more than
between the two passes of one round. BLAS and OpenMP run one thread by default
(``--blas-threads``): with two, ``batch_logreg``'s refits varied 2x between rounds on a busy
2-core machine and were no faster on average; the other learners handle one event at a time
and do not use them.

Usage::

    python benchmarks/bench_learners.py --events 20000 --rounds 3
    python benchmarks/bench_learners.py --events 5000 --rounds 1 --profile   # where eventml's time goes
"""

from __future__ import annotations

import argparse
import cProfile
import json
import platform
import pstats
import statistics
import time
import uuid
from pathlib import Path

import numpy as np
import sklearn
from threadpoolctl import threadpool_info, threadpool_limits
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import StandardScaler

import eventml as em
from eventml.kafka import kafka_for

HERE = Path(__file__).resolve().parent
LEARNERS = ["river_logreg", "river_gnb", "river_hoeffding", "sgd_logreg", "batch_logreg"]
BATCH = 32  # sgd_logreg's micro-batch size
SEED = 1


# ----------------------------------------------------------------------------- (a) memory vs replay


def timed_prequential(events, name: str):
    learner = em.make_learner(name, seed=SEED)
    started = time.perf_counter()
    df = em.prequential(events, learner, measure_memory=False)
    return time.perf_counter() - started, df.iloc[-1]


def prequential_replay(topic: str, servers: str, name: str):
    started = time.perf_counter()
    with em.replay(topic, bootstrap_servers=servers) as consumer:
        seconds, last = timed_prequential(consumer, name)
    return time.perf_counter() - started, last


def replay_only(topic: str, servers: str, n: int) -> float:
    started = time.perf_counter()
    with em.replay(topic, bootstrap_servers=servers) as consumer:
        got = sum(1 for _ in consumer)
    assert got == n, f"replayed {got} of {n} events"
    return time.perf_counter() - started


def same_figures(a, b) -> bool:
    keys = ["step", "accuracy", "f1", "log_loss", "roc_auc"]
    return all(a[k] == b[k] for k in keys)


# ----------------------------------------------------------------------------- (b) partial_fit


def arrays(events):
    columns = sorted(events[0].features)
    X = np.array([[e.features[c] for c in columns] for e in events], dtype=float)
    y = np.array([e.label for e in events])
    return X, y


def eventml_learn(events) -> float:
    learner = em.learners.MicroBatchPartialFit(SGDClassifier(loss="log_loss", random_state=SEED), batch_size=BATCH,
                                      scale=True)
    started = time.perf_counter()
    for event in events:
        learner.learn_one(event.features, event.label)
    return time.perf_counter() - started


def direct_learn(X, y) -> float:
    clf, scaler, classes = SGDClassifier(loss="log_loss", random_state=SEED), StandardScaler(), np.unique(y)
    started = time.perf_counter()
    for start in range(0, len(y) - BATCH + 1, BATCH):
        xb = X[start:start + BATCH]
        clf.partial_fit(scaler.partial_fit(xb).transform(xb), y[start:start + BATCH], classes=classes)
    return time.perf_counter() - started


def eventml_test_then_train(events):
    learner = em.learners.MicroBatchPartialFit(SGDClassifier(loss="log_loss", random_state=SEED), batch_size=BATCH,
                                      scale=True)
    probas = []
    started = time.perf_counter()
    for event in events:
        probas.append(learner.predict_proba_one(event.features).get(1))
        learner.learn_one(event.features, event.label)
    return time.perf_counter() - started, probas


def direct_test_then_train(X, y, batch_predict: bool):
    clf, scaler, classes = SGDClassifier(loss="log_loss", random_state=SEED), StandardScaler(), np.unique(y)
    probas = []
    fitted = False
    started = time.perf_counter()
    for start in range(0, len(y), BATCH):
        stop = min(start + BATCH, len(y))
        xb = X[start:stop]
        if not fitted:
            probas.extend([None] * (stop - start))
        elif batch_predict:
            probas.extend(clf.predict_proba(scaler.transform(xb))[:, 1])
        else:
            for i in range(start, stop):
                probas.append(clf.predict_proba(scaler.transform(X[i:i + 1]))[0, 1])
        if stop - start == BATCH:  # eventml learns full micro-batches only
            clf.partial_fit(scaler.partial_fit(xb).transform(xb), y[start:stop], classes=classes)
            fitted = True
    return time.perf_counter() - started, probas


def same_probas(a, b) -> bool:
    """Equal after the first micro-batch (before it eventml predicts class frequencies, direct nothing)."""
    return len(a) == len(b) and np.allclose(np.array(a[BATCH:], dtype=float), np.array(b[BATCH:], dtype=float))


def profile_eventml(events, top: int = 15) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(eventml_test_then_train, events)
    print("\ncProfile of eventml test-then-train (predict_proba_one + learn_one), by cumulative time:")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


# ----------------------------------------------------------------------------- the run


def run(servers: str, n: int, rounds: int) -> dict:
    events = list(em.synthetic("sea", n, seed=SEED))
    topic = f"bench-learners-{uuid.uuid4().hex[:6]}"
    em.create_topic(topic, bootstrap_servers=servers)
    report = em.produce(events, topic, bootstrap_servers=servers, progress=False)
    assert report.delivered == n
    X, y = arrays(events)

    memory = {name: [] for name in LEARNERS}
    replay = {name: [] for name in LEARNERS}
    read = []
    pf = {k: [] for k in ("eventml_learn", "direct_learn", "eventml_ttt", "direct_ttt", "direct_batch_predict")}
    for round_ in range(rounds):
        read.append(n / replay_only(topic, servers, n))
        for name in LEARNERS:
            first_memory = round_ % 2 == 0  # alternate so neither pass always runs first
            for source in ("memory", "replay") if first_memory else ("replay", "memory"):
                if source == "memory":
                    seconds, last_memory = timed_prequential(events, name)
                    memory[name].append(n / seconds)
                else:
                    seconds, last_replay = prequential_replay(topic, servers, name)
                    replay[name].append(n / seconds)
            assert same_figures(last_memory, last_replay), f"{name}: memory and replay figures differ"
            print(f"round {round_ + 1} {name:16s} memory {memory[name][-1]:>9,.0f}/s  replay {replay[name][-1]:>9,.0f}/s")
        pf["eventml_learn"].append(n / eventml_learn(events))
        pf["direct_learn"].append(n / direct_learn(X, y))
        seconds, eventml_probas = eventml_test_then_train(events)
        pf["eventml_ttt"].append(n / seconds)
        seconds, direct_probas = direct_test_then_train(X, y, batch_predict=False)
        pf["direct_ttt"].append(n / seconds)
        seconds, batch_probas = direct_test_then_train(X, y, batch_predict=True)
        pf["direct_batch_predict"].append(n / seconds)
        assert same_probas(eventml_probas, direct_probas), "eventml and direct partial_fit predictions differ"
        assert same_probas(eventml_probas, batch_probas), "batch predictions differ from one-at-a-time ones"
        print(f"round {round_ + 1} partial_fit      " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in pf.items()))
    em.delete_topic(topic, bootstrap_servers=servers)

    med = statistics.median
    learners = {
        name: {"memory_events_per_s": round(med(memory[name])), "replay_events_per_s": round(med(replay[name])),
               **ratio("replay_ratio", replay[name], memory[name])}
        for name in LEARNERS
    }
    return {
        "events": n, "rounds": rounds, "source": "sea", "python": platform.python_version(),
        "blas_threads": max(info["num_threads"] for info in threadpool_info()),
        "kafka": em.kafka.KAFKA_VERSION, "scikit_learn": sklearn.__version__,
        "replay_only_events_per_s": round(med(read)),
        "learners": learners,
        "partial_fit": {
            "batch_size": BATCH,
            **{f"{k}_events_per_s": round(med(v)) for k, v in pf.items()},
            **ratio("learn_ratio", pf["eventml_learn"], pf["direct_learn"]),
            **ratio("test_then_train_ratio", pf["eventml_ttt"], pf["direct_ttt"]),
            **ratio("test_then_train_ratio_vs_batch_predict", pf["eventml_ttt"], pf["direct_batch_predict"]),
        },
    }


def ratio(name: str, numerators: list[float], denominators: list[float]) -> dict:
    """Median and range of the per-round ratios."""
    ratios = [a / b for a, b in zip(numerators, denominators)]
    return {name: round(statistics.median(ratios), 3), f"{name}_range": [round(min(ratios), 3), round(max(ratios), 3)]}


def _range(r: list[float]) -> str:
    return f"[{r[0]:.2f}, {r[1]:.2f}]"


def print_table(result: dict) -> None:
    print(f"\n{result['events']:,} sea events, median of {result['rounds']} round(s); "
          f"replay alone (no learner): {result['replay_only_events_per_s']:,} events/s")
    print(f"{'learner':16s} {'memory ev/s':>12s} {'replay ev/s':>12s} {'replay/memory':>14s}  range")
    for name, r in result["learners"].items():
        print(f"{name:16s} {r['memory_events_per_s']:>12,} {r['replay_events_per_s']:>12,} {r['replay_ratio']:>14.3f}"
              f"  {_range(r['replay_ratio_range'])}")
    p = result["partial_fit"]
    print(f"\npartial_fit (SGDClassifier, scaled, micro-batches of {p['batch_size']}), eventml / direct:")
    for label, key, a, b, note in [
        ("learn only", "learn_ratio", "eventml_learn", "direct_learn", ""),
        ("test-then-train", "test_then_train_ratio", "eventml_ttt", "direct_ttt", "both predict one event at a time"),
        ("vs batch predict", "test_then_train_ratio_vs_batch_predict", "eventml_ttt", "direct_batch_predict",
         "direct predicts 32 events per call"),
    ]:
        print(f"  {label:16s} {p[a + '_events_per_s']:>8,} vs {p[b + '_events_per_s']:>8,} ev/s  ratio {p[key]:.3f}"
              f" {_range(p[key + '_range'])}  {note}".rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bootstrap-servers", help="use this cluster instead of a fresh local broker")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of eventml's partial_fit loop")
    parser.add_argument("--blas-threads", type=int, default=1, help="BLAS/OpenMP threads (0: the libraries' default)")
    parser.add_argument("--output", default=str(HERE / "results" / "learners.json"))
    args = parser.parse_args()
    if args.blas_threads:
        threadpool_limits(args.blas_threads)
    with kafka_for(args.bootstrap_servers) as servers:
        result = run(servers, args.events, args.rounds)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print_table(result)
    print(f"written to {out}")
    if args.profile:
        profile_eventml(list(em.synthetic("sea", args.events, seed=SEED)))


if __name__ == "__main__":
    main()
