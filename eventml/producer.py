"""Write events to a topic: validated JSON, keyed by id, batched, with delivery accounting.

Examples
--------
>>> from eventml.producer import produce
>>> from eventml.sources import synthetic
>>> report = produce(synthetic("sea", 1000, seed=1), "sea-events")  # doctest: +SKIP
>>> report.delivered  # doctest: +SKIP
1000
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Iterable

from kafka import KafkaProducer

from eventml.config import producer_config
from eventml.connect import make_client
from eventml.events import Event, Label, encode_event, encode_label
from eventml.progress import progress_bar


@dataclasses.dataclass
class ProduceReport:
    """What a :func:`produce` call did: counts, failures and the rate it reached."""

    topic: str
    sent: int = 0
    failed: int = 0
    seconds: float = 0.0
    first_error: str | None = None

    @property
    def delivered(self) -> int:
        """Events the broker acknowledged (valid once the producer was flushed)."""
        return self.sent - self.failed

    @property
    def events_per_s(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


class EventProducer:
    """A producer of wire-format events to one topic.

    Every event is validated and encoded as JSON, keyed by its id. Failed deliveries are
    counted in :attr:`report`, not silently lost.

    Parameters
    ----------
    topic
        The topic to write to.
    bootstrap_servers
        Overrides ``EVENTML_BOOTSTRAP_SERVERS``.
    **config
        kafka-python producer settings over eventml's defaults (see :mod:`eventml.config`).

    Examples
    --------
    >>> with EventProducer("clicks") as producer:  # doctest: +SKIP
    ...     producer.send({"id": "e-1", "features": {"x": 1.0}, "label": 0})
    >>> producer.report.delivered  # doctest: +SKIP
    1
    """

    def __init__(self, topic: str, *, bootstrap_servers: str | None = None, **config: Any):
        self.topic = topic
        self.report = ProduceReport(topic)
        self._producer = make_client(KafkaProducer, producer_config(bootstrap_servers, **config))
        # With one partition there is nothing to choose: skipping the key hash saves ~10% per event.
        partitions = self._producer.partitions_for(topic)
        self._partition = 0 if partitions == {0} else None
        self._started = time.perf_counter()

    def _on_error(self, exc: BaseException) -> None:
        self.report.failed += 1
        if self.report.first_error is None:
            self.report.first_error = repr(exc)

    def send(self, event: Event | Label | dict[str, Any]) -> None:
        """Validate, encode and send one event, or a :class:`~eventml.events.Label` for a labels
        topic (asynchronously; see :meth:`flush`)."""
        if isinstance(event, Label):
            self.send_raw(encode_label(event), event.id.encode())
            return
        key = (event.id if isinstance(event, Event) else event["id"]).encode()
        self.send_raw(encode_event(event), key)

    def send_raw(self, value: bytes | None, key: bytes | None = None,
                 headers: list[tuple[str, bytes]] | None = None) -> None:
        """Send bytes as they are: for labels, predictions and records of other formats."""
        future = self._producer.send(self.topic, value=value, key=key, headers=headers, partition=self._partition)
        future.add_errback(self._on_error)
        self.report.sent += 1

    def flush(self, timeout_s: float | None = None) -> ProduceReport:
        """Wait until every sent event is acknowledged or failed; return the report."""
        self._producer.flush(timeout=timeout_s)
        self.report.seconds = time.perf_counter() - self._started
        return self.report

    def close(self) -> ProduceReport:
        self.flush()
        self._producer.close()
        return self.report

    def __enter__(self) -> "EventProducer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def produce(events: Iterable[Event | dict[str, Any]], topic: str, *, bootstrap_servers: str | None = None,
            rate: float | None = None, progress: bool = True, total: int | None = None,
            **config: Any) -> ProduceReport:
    """Write events to a topic and wait until all are acknowledged.

    Parameters
    ----------
    events
        Any iterable of :class:`~eventml.events.Event` or wire-format dicts (a source, a list),
        or of :class:`~eventml.events.Label` for a labels topic.
    topic
        The topic to write to (created with one partition if it does not exist).
    rate
        Target events per second; ``None`` sends as fast as possible.
    progress
        Show a tqdm progress bar.
    total
        Expected number of events, for the progress bar (taken from ``len(events)`` if any).
    **config
        kafka-python producer settings over eventml's defaults.

    Returns
    -------
    ProduceReport
        ``sent``, ``delivered``, ``failed``, ``seconds`` and ``events_per_s``.
    """
    if rate is not None:
        from eventml.sources import rate_limited

        events = rate_limited(events, rate)
    if total is None and hasattr(events, "__len__"):
        total = len(events)
    with EventProducer(topic, bootstrap_servers=bootstrap_servers, **config) as producer:
        with progress_bar(total=total, desc=f"produce {topic}", unit="ev", enabled=progress) as bar:
            for event in events:
                producer.send(event)
                bar.tick()
    return producer.report


def produce_dataframe(df, topic: str, *, target: str | None = None, id_column: str | None = None,
                      ts_column: str | None = None, **kwargs: Any) -> ProduceReport:
    """Write one event per DataFrame row (see :func:`eventml.sources.from_dataframe`)."""
    from eventml.sources import from_dataframe

    events = from_dataframe(df, target=target, id_column=id_column, ts_column=ts_column)
    return produce(events, topic, total=len(df), **kwargs)


class BackgroundProduce:
    """:func:`produce` running in a thread, e.g. a paced stream while a live updater reads it.

    Examples
    --------
    >>> import eventml as em
    >>> job = em.produce_in_background(em.synthetic("sea", 5000), "sea", rate=500)  # doctest: +SKIP
    >>> job.join().delivered  # doctest: +SKIP
    5000
    """

    def __init__(self, events: Iterable[Event | dict[str, Any]], topic: str, **kwargs: Any):
        import threading

        self.report: ProduceReport | None = None
        self._error: BaseException | None = None
        kwargs.setdefault("progress", False)

        def target() -> None:
            try:
                self.report = produce(events, topic, **kwargs)
            except BaseException as exc:  # handed to join()
                self._error = exc

        self._thread = threading.Thread(target=target, name=f"eventml-produce-{topic}", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout_s: float | None = None) -> ProduceReport | None:
        """Wait until every event is sent and acknowledged; return the report (None if the
        timeout came first); re-raise the error if producing failed."""
        self._thread.join(timeout_s)
        if self._error is not None:
            raise self._error
        return self.report


def produce_in_background(events: Iterable[Event | dict[str, Any]], topic: str, **kwargs: Any) -> BackgroundProduce:
    """Start :func:`produce` in a background thread (no progress bar by default) and return
    its handle; ``handle.join()`` gives the :class:`ProduceReport`. Takes the parameters of
    :func:`produce`, e.g. ``rate`` in events per second."""
    return BackgroundProduce(events, topic, **kwargs)
