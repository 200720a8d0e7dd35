"""What alert rules cost the live updater's per-record work, side by side with no rules, in one run.

The :class:`~eventml.live.processor.RecordProcessor` (as in ``bench_record_path.py``: encoded SEA events as
confluent-kafka ``Message`` objects, in runs of ``MAX_RUN``, every event labelled) with:

- ``none``: no alert rules (the baseline: the updater as it is without ``alerts=``);
- ``metric``: ``accuracy<0.8:200`` (a rolling accuracy per model, updated at each label);
- ``drift``: ``drift:adwin`` (river's ADWIN fed each label's 0/1 error);
- ``all``: both, with ``dead_letters>5/1000`` and ``lag>10000`` (which cost nothing per clean record).

The order of the contenders is reversed every round; each contender's published predictions are checked
equal to the baseline's count. Reported as events/s and as the ratio to ``none``.

Usage: ``python benchmarks/bench_alerts.py [--events 100000] [--rounds 5] [--model river_logreg] [--clock cpu]``
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import eventml as em
from bench_record_path import CLOCKS, METRICS, ROLLING, records, timed
from eventml.alerts import AlertWatch, parse_alert
from eventml.learners import make_learner
from eventml.live.processor import MAX_RUN, RecordProcessor
from eventml.live.state import UpdaterState

CONTENDERS = {"none": [], "metric": ["accuracy<0.8:200"], "drift": ["drift:adwin"],
              "all": ["accuracy<0.8:200", "drift:adwin", "dead_letters>5/1000", "lag>10000"]}


def run(name: str, rules: list[str], recs: list) -> int:
    state = UpdaterState.fresh(make_learner(name), METRICS, ROLLING)
    state.alerts = AlertWatch.resume(None, [parse_alert(rule) for rule in rules], [name], True)
    processor = RecordProcessor(state, "predictions", lambda topic, value, key, partition=-1, headers=None: True)
    for start in range(0, len(recs), MAX_RUN):
        processor.events(recs[start:start + MAX_RUN])
    return state.counts["events"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", default="river_logreg")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    parser.add_argument("--output", default="benchmarks/results")
    args = parser.parse_args()

    recs = records(list(em.synthetic("sea", args.events, seed=42)))
    clock = CLOCKS[args.clock]
    seconds: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for round_ in range(args.rounds):
        for name in list(CONTENDERS) if round_ % 2 == 0 else list(reversed(CONTENDERS)):
            elapsed, published = timed(clock, run, args.model, CONTENDERS[name], recs)
            assert published == args.events, (name, published)
            seconds[name].append(elapsed)
    rates = {name: args.events / statistics.median(values) for name, values in seconds.items()}
    print(f"{args.events} SEA events, {args.model}, RecordProcessor in runs of {MAX_RUN}, median of {args.rounds} "
          f"rounds, {args.clock} clock")
    for name, rate in rates.items():
        print(f"  {name:<7} {rate:>10,.0f} events/s  {1e6 / rate:6.2f} us/event  {rate / rates['none']:.3f}x no rules")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_alerts.json").write_text(json.dumps(
        {"events": args.events, "model": args.model, "rounds": args.rounds, "clock": args.clock,
         "events_per_s": rates, "ratio_to_none": {name: rate / rates["none"] for name, rate in rates.items()}},
        indent=1))


if __name__ == "__main__":
    main()
