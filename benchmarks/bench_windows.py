"""Windowed features: eventml's per-event cost against river's own Agg/TimeRolling, and the live updater with and without.

(a) **In memory**, ``--rounds`` rounds alternating the order: the same ``--events`` card payments
    (``em.sources.transactions``, seed 1) through 10 windowed features per user over the amount:
    count, sum, mean and std over a sliding 15 minutes and over 1 hour, mean and std over the last 20
    payments. eventml: one :class:`eventml.windows.WindowedFeatures` (``features_one`` per event: the
    features from the events before it, then the event is kept). river: the strongest way river does
    it, ten ``feature_extraction.Agg(on="amount", by="user", how=...)`` with ``utils.TimeRolling`` of
    ``stats.Sum``/``Mean``/``Var`` (std = sqrt of var; a count is the sum of a feature ``one`` = 1
    added to each event before timing, as ``stats.Count`` cannot be reverted) and ``utils.Rolling`` of ``Mean``/``Var``,
    ``transform_one`` then ``learn_one(x, t=...)`` per event (no leakage, as eventml). They do not
    compute quite the same thing: river's time window ends at the key's previous event (it moves only
    when the key is updated), eventml's ends at the current event, and river's sums are reverted by
    subtraction; per feature, the share of events where both agree (to 1e-9, missing = 0) is reported. Also
    reported: the pickled state of each at the end (river keeps every key forever; eventml frees a key
    once its windows are empty).
    Also reported: ``peek_us_per_request``, what the prediction service adds to a request of an updater
    with these windows: ``features_for`` (the read-only peek) of every event's features on the state
    after the whole stream, one second after its end.
(b) **Live** (with ``--bootstrap-servers``): ``--live-events`` payments on a one-partition topic keyed by
    user, through :class:`eventml.live.LiveUpdater` with ``river_logreg`` and its defaults, without and
    with the same 10 windows, ``--live-rounds`` rounds alternating the order; events/s is the events
    over the wall time of ``run()`` (connecting included, the same for both).

Writes ``benchmarks/results/windows.json``. Usage: ``python benchmarks/bench_windows.py [--events 50000]
[--rounds 3] [--bootstrap-servers 127.0.0.1:9092] [--live-events 20000] [--live-rounds 2]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import pickle
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from river import feature_extraction, stats, utils

import eventml as em
from eventml.sources import transactions
from eventml.windows import Window, WindowedFeatures

WINDOWS = [Window("user", "amount", ["count", "sum", "mean", "std"], over="15min"),
           Window("user", "amount", ["count", "sum", "mean", "std"], over="1h"),
           Window("user", "amount", ["mean", "std"], last=20)]


def river_aggs() -> list:
    """The same 10 features as river's Agg (std as a Var, its square root taken when read)."""
    out = []
    for period in (dt.timedelta(minutes=15), dt.timedelta(hours=1)):  # a count: the sum of a feature "one" = 1
        out.append(feature_extraction.Agg(on="one", by="user", how=utils.TimeRolling(stats.Sum, period=period)))
        for stat in (stats.Sum, stats.Mean, stats.Var):
            out.append(feature_extraction.Agg(on="amount", by="user", how=utils.TimeRolling(stat, period=period)))
    for stat in (stats.Mean, stats.Var):
        out.append(feature_extraction.Agg(on="amount", by="user", how=utils.Rolling(stat, window_size=20)))
    return out


def run_eventml(rows: list) -> tuple[float, list, int]:
    features = WindowedFeatures(WINDOWS)
    out = []
    start = time.perf_counter()
    for x, ts, _ in rows:
        out.append(features.features_one(x, ts))
    return time.perf_counter() - start, out, len(pickle.dumps(features))


def run_river(rows: list) -> tuple[float, list, int]:
    aggs = river_aggs()
    timed, counted = aggs[:8], aggs[8:]  # TimeRolling takes the time, Rolling does not
    out = []
    start = time.perf_counter()
    for x, _, t in rows:
        values = [value for agg in aggs for value in agg.transform_one(x).values()]
        for agg in timed:
            agg.learn_one(x, t=t)
        for agg in counted:
            agg.learn_one(x)
        out.append(values)
    return time.perf_counter() - start, out, len(pickle.dumps(aggs))


def agree(ours: list, theirs: list) -> dict[str, float]:
    """Per feature, the share of events where eventml and river agree (std from river's var; missing as 0)."""
    names = list(ours[0])
    same = [0] * len(names)
    for mine, river_values in zip(ours, theirs):
        for i, (a, b) in enumerate(zip(mine.values(), river_values)):
            a = 0.0 if a is None else float(a)
            b = math.sqrt(max(b, 0.0)) if names[i].startswith("amount_std") else b
            same[i] += math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return {name: round(n / len(ours), 4) for name, n in zip(names, same)}


def peek_cost(rows: list) -> float:
    """Microseconds per served request's peek (``features_for``), on the state after every event."""
    features = WindowedFeatures(WINDOWS)
    for x, ts, _ in rows:
        features.features_one(x, ts)
    at = rows[-1][1] + 1.0
    start = time.perf_counter()
    for x, _, _ in rows:
        features.features_for(x, at)
    return (time.perf_counter() - start) / len(rows) * 1e6


def in_memory(n: int, rounds: int) -> dict:
    events = list(transactions(n, seed=1))
    rows = [(e.features, e.ts, dt.datetime.fromtimestamp(e.ts, dt.timezone.utc).replace(tzinfo=None)) for e in events]
    river_rows = [({**x, "one": 1}, ts, t) for x, ts, t in rows]
    times: dict[str, list] = {"eventml": [], "river": []}
    ratios = []
    for r in range(rounds):
        order = ["eventml", "river"] if r % 2 == 0 else ["river", "eventml"]
        results = {name: run_eventml(rows) if name == "eventml" else run_river(river_rows) for name in order}
        for name, (seconds, _, _) in results.items():
            times[name].append(seconds / n * 1e6)
        ratios.append(results["eventml"][0] / results["river"][0])
    return {"events": n, "us_per_event": {k: statistics.median(v) for k, v in times.items()},
            "ratio_eventml_over_river": statistics.median(ratios), "ratios": ratios,
            "agreeing_share": agree(results["eventml"][1], results["river"][1]),
            "state_bytes": {"eventml": results["eventml"][2], "river": results["river"][2]},
            "peek_us_per_request": peek_cost(rows)}


def live(servers: str, n: int, rounds: int) -> dict:
    topic = f"bench-windows-{uuid.uuid4().hex[:8]}"
    em.create_topic(topic, bootstrap_servers=servers)
    em.produce(transactions(n, seed=2), topic, key="user", bootstrap_servers=servers, progress=False)
    rates: dict[str, list] = {"without": [], "with": []}
    for r in range(rounds):
        order = ["without", "with"] if r % 2 == 0 else ["with", "without"]
        for name in order:
            with tempfile.TemporaryDirectory() as state_dir:
                updater = em.LiveUpdater(topic, f"{topic}.{name}.{r}", state_dir=Path(state_dir) / "s",
                                         bootstrap_servers=servers, max_events=n,
                                         windows=WINDOWS if name == "with" else None)
                start = time.perf_counter()
                stats_ = updater.run()
                rates[name].append(stats_.events / (time.perf_counter() - start))
    em.delete_topic(topic, bootstrap_servers=servers)
    medians = {k: statistics.median(v) for k, v in rates.items()}
    return {"events": n, "events_per_s": medians, "rounds": rates,
            "ratio_with_over_without": medians["with"] / medians["without"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bootstrap-servers")
    parser.add_argument("--live-events", type=int, default=20_000)
    parser.add_argument("--live-rounds", type=int, default=2)
    args = parser.parse_args()
    result = {"in_memory": in_memory(args.events, args.rounds)}
    print(json.dumps(result["in_memory"], indent=1))
    if args.bootstrap_servers:
        result["live"] = live(args.bootstrap_servers, args.live_events, args.live_rounds)
        print(json.dumps(result["live"], indent=1))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "windows.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
