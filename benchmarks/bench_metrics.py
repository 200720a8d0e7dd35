"""What Prometheus metrics cost the live updater: its events/s with ``metrics_port`` and without, paired.

In one run, against one real broker, on the same SEA events (one partition) and model as
``bench_live.py`` (its ``run_live``: the live updater with its defaults, ``river_logreg``): each round
runs the updater once without metrics and once with ``metrics_port`` while a thread scrapes its
``/metrics`` every ``--scrape-interval`` seconds (default 0.5 s, thirty times Prometheus' default
rate), the order reversed every other round. Rates are steady ones, as in ``bench_live.py``: from the
summary row at 10% of the events to the run's end. Reported: events/s of each (median and range) and
the paired ratio on/off of each round (median and range), and the same for the CPU time of the process per
event (off/on: the updater's work, less swayed by other processes than the wall clock); the goal is a cost
of at most 3% (ratio >= 0.97). On a shared machine the rounds vary by more than that either way, so the script also
times what metrics add, which does not vary with the load of other processes: one scrape of an updater
(its collector and the text format, in the process) and one commit's observation, as a share of a
second at the scrape interval and the runs' commit rate.

Usage: ``python benchmarks/bench_metrics.py [--events 300000] [--rounds 5] [--scrape-interval 0.5]
[--bootstrap-servers HOST:PORT]``; writes ``benchmarks/results/metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from prometheus_client import generate_latest

import eventml as em
from bench_live import HERE, median_range, run_live
from contenders.bare_loop import unique
from eventml.kafka import free_port, kafka_for
from eventml.live import LiveUpdater


def scraping(url: str, every_s: float, stop: threading.Event, scrapes: list) -> threading.Thread:
    """A thread that reads ``url`` every ``every_s`` until ``stop`` (a refused connection before the updater
    listens, or after it closed, is not counted)."""
    def run() -> None:
        while not stop.wait(every_s):
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    scrapes.append(len(answer.read()))
            except OSError:
                pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def one_run(servers, topic, n, folder, metrics: bool, every_s: float) -> dict:
    """One live run over ``n`` events: its steady events/s, and the CPU seconds of this process per 1,000 events
    (the updater, its Kafka clients' threads and, with metrics, the scraping client too)."""
    mark, cpu = n // 10, time.process_time()
    if not metrics:
        times = run_live(servers, topic, unique("bench-metrics-off"), n, mark, folder)
        extra = {"commits_per_s": times["transactions"] / (times["ended_at"] - times["started_at"])}
    else:
        port, stop, scrapes = free_port(), threading.Event(), []
        thread = scraping(f"http://127.0.0.1:{port}/metrics", every_s, stop, scrapes)
        try:
            times = run_live(servers, topic, unique("bench-metrics-on"), n, mark, folder, metrics_port=port)
        finally:
            stop.set()
            thread.join()
        extra = {"scrapes": len(scrapes)}
    return {"rate": (n - times["marked_events"]) / (times["ended_at"] - times["marked_at"]),
            "cpu_ms_per_1000": (time.process_time() - cpu) / n * 1e6, **extra}


def unit_costs(servers, topic, folder, n=5000, repeats=500) -> dict:
    """Seconds of one scrape (collect + text format) of an updater that ran ``n`` events, and of one commit's
    observation (the histogram; the lags, read from the consumer, are timed in the live runs)."""
    updater = LiveUpdater(topic, unique("bench-metrics-unit"), state_dir=folder / unique("unit"),
                          bootstrap_servers=servers, max_events=n, metrics_port=0)
    updater.run()
    registry, observe = updater.exporter.registry, updater.exporter.commit_seconds.observe
    started = time.perf_counter()
    for _ in range(repeats):
        generate_latest(registry)
    scrape_s = (time.perf_counter() - started) / repeats
    started = time.perf_counter()
    for _ in range(repeats):
        observe(0.01)
    observe_s = (time.perf_counter() - started) / repeats
    updater.close_metrics()
    return {"scrape_s": scrape_s, "commit_observe_s": observe_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scrape-interval", type=float, default=0.5)
    parser.add_argument("--bootstrap-servers")
    parser.add_argument("--output", default=str(HERE / "results" / "metrics.json"))
    args = parser.parse_args()
    load_at_start = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, kafka_for(args.bootstrap_servers) as servers:
        topic = unique("bench-metrics")
        em.recreate_topic(topic, bootstrap_servers=servers)
        em.produce(em.synthetic("sea", args.events, seed=1), topic, bootstrap_servers=servers, progress=False)
        one_run(servers, topic, 5000, Path(tmp), False, args.scrape_interval)  # untimed warm-up
        units = unit_costs(servers, topic, Path(tmp))
        for r in range(args.rounds):
            order = (False, True) if r % 2 == 0 else (True, False)
            row = {("on" if m else "off"): one_run(servers, topic, args.events, Path(tmp), m, args.scrape_interval)
                   for m in order}
            row["on/off"] = row["on"]["rate"] / row["off"]["rate"]
            row["cpu off/on"] = row["off"]["cpu_ms_per_1000"] / row["on"]["cpu_ms_per_1000"]
            row["order"] = ["on" if m else "off" for m in order]
            rows.append(row)
            print(f"round {r + 1} ({' then '.join(row['order'])}): off {row['off']['rate']:,.0f}/s, on "
                  f"{row['on']['rate']:,.0f}/s ({row['on']['scrapes']} scrapes), on/off {row['on/off']:.3f}; CPU per 1,000 "
                  f"events off {row['off']['cpu_ms_per_1000']:.1f} ms, on {row['on']['cpu_ms_per_1000']:.1f} ms, "
                  f"off/on {row['cpu off/on']:.3f}", flush=True)
    result = {"events": args.events, "rounds": rows, "scrape_interval_s": args.scrape_interval,
              "off": median_range(r["off"]["rate"] for r in rows), "on": median_range(r["on"]["rate"] for r in rows),
              "on/off": median_range(r["on/off"] for r in rows),
              "cpu off/on": median_range(r["cpu off/on"] for r in rows), **units,
              "load_average_1min": [round(load_at_start, 2), round(os.getloadavg()[0], 2)]}
    ratio, cpu = result["on/off"], result["cpu off/on"]
    print(f"\nmetrics on/off events/s: median {ratio['median']:.3f} (range {ratio['min']:.3f}-{ratio['max']:.3f}); "
          f"CPU per event off/on: median {cpu['median']:.3f} (range {cpu['min']:.3f}-{cpu['max']:.3f}); over "
          f"{args.rounds} paired rounds; goal >= 0.97; load average {load_at_start:.1f} -> {os.getloadavg()[0]:.1f}")
    commits_per_s = statistics.median(r["off"]["commits_per_s"] for r in rows)
    share = units["scrape_s"] / args.scrape_interval + units["commit_observe_s"] * commits_per_s
    result["share_of_a_second"] = share
    print(f"one scrape: {units['scrape_s'] * 1e3:.2f} ms; one commit's observation: {units['commit_observe_s'] * 1e6:.1f} "
          f"us at {commits_per_s:.1f} commits/s: {share:.2%} of the updater's time at a scrape every "
          f"{args.scrape_interval:g} s ({units['scrape_s'] / 15:.4%} at Prometheus' default 15 s)")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
