"""The prediction service: the watcher, the optional loop writer and the app, on uvicorn.

:func:`serve` starts it in a background thread (a notebook, a test) and returns a
:class:`ServerHandle` with ``.url`` and ``.stop()``; ``eventml serve`` runs it in the foreground.
It binds ``127.0.0.1`` unless told otherwise. It serves one live updater's state directory
(:class:`~eventml.service.watcher.ModelWatcher`) or a group of live updaters' state topic
(:class:`~eventml.service.group_watcher.StateTopicWatcher`, ``group=...``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from eventml.errors import ConfigError, EventmlError
from eventml.events import key_feature
from eventml.kafka.settings import KafkaSettings
from eventml.metrics.service import ServiceMetrics
from eventml.service.watcher import ModelWatcher, PollingWatcher, read_updater_identity
from eventml.validation import positive_number

__all__ = ["PredictionService", "ServerHandle", "serve", "DEFAULT_PORT"]

log = logging.getLogger("eventml.service")
DEFAULT_PORT = 8000
_START_TIMEOUT_S = 30.0


class PredictionService:
    """What the HTTP app serves from: the committed model(s) (a watcher) and, with ``close_loop``,
    the :class:`~eventml.service.loop.LoopWriter`.

    Parameters
    ----------
    state_dir
        One live updater's state directory; or None with ``group``.
    kafka
        The updaters' cluster (:class:`~eventml.kafka.settings.KafkaSettings`).
    group
        Instead of ``state_dir``: the name of a group of live updaters (``eventml live --group``);
        each event is answered by the model of its partition (or the global model).
    events_topic
        With ``group``: the group's events topic (required); served events go there with
        ``close_loop``. With ``state_dir``: where served events go (default: the updater's).
    scope
        With ``group``: ``"partition"`` or ``"global"``, as the group was started.
    state_key
        With ``group``: the key that authenticates its state (default ``$EVENTML_STATE_KEY``).
    key
        The feature the events are keyed by (``em.produce(..., key="user")``, see
        :func:`~eventml.events.record_key`): with ``group``, each request is answered by the model of
        the partition of its value (of its id without it); with ``close_loop``, served events are keyed by it.
    close_loop
        Write every served event (without label) and prediction back to Kafka.
    predictions_topic
        Where served predictions go; with ``state_dir`` the default is ``<the updater's predictions
        topic>.served``; with ``group`` it is required. It must differ from the updaters' own
        predictions topic, which holds one prediction per event.
    poll_interval_s
        How often the watcher looks for a new commit.
    """

    def __init__(self, state_dir: str | os.PathLike | None, kafka: KafkaSettings, *, group: str | None = None,
                 events_topic: str | None = None, scope: str = "partition", state_key: str | bytes | None = None,
                 key: str | None = None, close_loop: bool = False, predictions_topic: str | None = None,
                 poll_interval_s: float = 0.2):
        if (state_dir is None) == (group is None):
            raise ConfigError("give state_dir (one live updater's state directory, --state-dir) or group (a group "
                              "of live updaters, --group with --events), one of the two")
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.kafka = kafka
        self.poll_interval_s = positive_number("poll_interval_s", poll_interval_s)
        self.served = 0
        self.model_errors = 0
        self.metrics = ServiceMetrics(self)  # GET /metrics
        self.loop = None
        self.close_loop = close_loop
        self.events_topic, self.predictions_topic = events_topic, predictions_topic
        self.key = key_feature(key)
        if group is None:
            if scope != "partition" or state_key is not None:
                raise ConfigError("scope and state_key are for a group of live updaters: give group (--group) "
                                  "instead of state_dir, or leave them out")
            if not close_loop and (events_topic or predictions_topic):
                raise ConfigError("events_topic and predictions_topic are for close_loop=True; "
                                  "add close_loop=True (--close-loop) or leave them out")
            if not close_loop and key:
                raise ConfigError(f"key={key!r} is for a group (group=, --group) or close_loop=True (--close-loop): "
                                  "one live updater's model answers every event, whatever its key; leave it out")
            if close_loop:
                self.events_topic, self.predictions_topic = self._loop_topics(events_topic, predictions_topic)
            self.watcher: PollingWatcher = ModelWatcher(self.state_dir, kafka, self.poll_interval_s)
            self.source = str(self.state_dir)
        else:
            from eventml.service.group_watcher import StateTopicWatcher

            if not events_topic:
                raise ConfigError(f"group {group!r} needs events_topic (--events): the topic its updaters read, "
                                  "whose partitions the models belong to")
            if predictions_topic and not close_loop:
                raise ConfigError("predictions_topic is for close_loop=True; add close_loop=True (--close-loop) "
                                  "or leave it out")
            if close_loop and (not predictions_topic or predictions_topic == events_topic):
                raise ConfigError(f"close_loop=True with group {group!r} needs predictions_topic "
                                  "(--predictions-topic), a topic of its own for the served predictions (not the "
                                  f"group's predictions or events topic), e.g. {events_topic + '.served'!r}")
            self.watcher = StateTopicWatcher(events_topic, group, kafka, scope=scope, state_key=state_key,
                                             key=key, poll_interval_s=self.poll_interval_s)
            self.source = f"group {group!r} (events topic {events_topic!r}, scope {scope}" + \
                (f", keyed by {key!r})" if key else ")")

    def _loop_topics(self, events_topic: str | None, predictions_topic: str | None) -> tuple[str, str]:
        identity = read_updater_identity(self.state_dir) or {}
        events_topic = events_topic or identity.get("events_topic")
        own = identity.get("predictions_topic")
        predictions_topic = predictions_topic or (f"{own}.served" if own else None)
        if not events_topic or not predictions_topic:
            raise ConfigError(f"{self.state_dir} has no updater.json yet to take the topics from: give "
                              "events_topic and predictions_topic (--events-topic, --predictions-topic)")
        if predictions_topic == own or predictions_topic == events_topic:
            raise ConfigError(f"predictions_topic {predictions_topic!r} is the updater's own "
                              f"{'predictions' if predictions_topic == own else 'events'} topic; served predictions "
                              f"go to a topic of their own, e.g. {(own or events_topic) + '.served'!r}")
        return events_topic, predictions_topic

    def no_model_sentence(self) -> str:
        return self.watcher.no_model_sentence()

    def start(self) -> "PredictionService":
        if self.close_loop and self.loop is None:
            from eventml.service.loop import LoopWriter

            self.loop = LoopWriter(self.kafka, self.events_topic, self.predictions_topic, self.key)
        self.watcher.start()
        return self

    def stop(self) -> None:
        self.watcher.stop()
        if self.loop is not None:
            self.loop.close()

    def uvicorn_server(self, host: str, port: int, log_level: str = "warning") -> Any:
        import uvicorn

        from eventml.service.app import create_app

        # log_config=None: uvicorn's default logging config would reset the process's logging (closing its
        # handlers, a notebook's included); its loggers propagate to whatever the user configured instead
        config = uvicorn.Config(create_app(self), host=host, port=port, log_level=log_level, access_log=False,
                                lifespan="off", timeout_graceful_shutdown=5, log_config=None)
        return uvicorn.Server(config)


class ServerHandle:
    """A running prediction service (see :func:`serve`): ``.url``, ``.model``, ``.stop()``; a context manager."""

    def __init__(self, service: PredictionService, server: Any, thread: threading.Thread, host: str, port: int):
        self.service, self._server, self._thread = service, server, thread
        self.host, self.port = host, port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def model(self) -> Any:
        """The :class:`~eventml.service.watcher.CommittedModel` served now (a group's
        :class:`~eventml.service.group_watcher.GroupModels`), or None."""
        return self.service.watcher.current

    def wait_for_model(self, timeout_s: float = 30.0, sequence: int | None = None) -> Any:
        """Wait until a committed model (of at least transaction ``sequence``) is served; return it.
        For a group: a model for every partition (each of at least transaction ``sequence``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            model = self.model
            if model is not None and model.ready and (sequence is None or model.sequence >= sequence):
                return model
            if time.monotonic() >= deadline:
                raise EventmlError(f"no committed model{'' if sequence is None else f' of transaction {sequence}'} "
                                   f"was served within {timeout_s:g} s: {self.service.no_model_sentence()}")
            time.sleep(0.02)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop answering (requests in flight finish), then the watcher and the loop writer."""
        self._server.should_exit = True
        self._thread.join(15)
        self.service.stop()

    def __enter__(self) -> "ServerHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        model = self.model
        return f"<eventml prediction service at {self.url}: {model.summary() if model else 'no model yet'}>"


def serve(state_dir: str | os.PathLike | None = None, *, group: str | None = None, events_topic: str | None = None,
          scope: str = "partition", state_key: str | bytes | None = None, key: str | None = None, port: int = 0,
          host: str = "127.0.0.1",
          close_loop: bool = False, predictions_topic: str | None = None, poll_interval_s: float = 0.2,
          bootstrap_servers: str | None = None, kafka: KafkaSettings | None = None, log_level: str = "warning",
          **connection: Any) -> ServerHandle:
    """Serve predictions over HTTP from the model(s) live updaters committed, in a background thread.

    Parameters
    ----------
    state_dir
        One live updater's state directory (it may not exist yet: 503 until the first commit).
    group, events_topic, scope, state_key
        Instead of ``state_dir``, a group of live updaters (``eventml live --group``): its name, its
        events topic, its scope and the key of its state (see :class:`PredictionService`). Each
        event is answered by the committed model of the partition its record key is placed in.
    key
        The feature the events are keyed by (``em.produce(..., key="user")``): with ``group``, a request
        is answered from the partition of its ``user``, as its events were placed (see :class:`PredictionService`).
    port
        TCP port; 0 picks a free one (see ``.url``).
    host
        Address to bind; ``127.0.0.1`` (this machine only) unless told otherwise.
    close_loop, predictions_topic, poll_interval_s
        See :class:`PredictionService`.
    bootstrap_servers, kafka, **connection
        The updaters' cluster, as for :class:`~eventml.live.LiveUpdater`.

    Returns
    -------
    ServerHandle
        ``.url``, ``.model``, ``.wait_for_model()``, ``.stop()``.

    Examples
    --------
    >>> server = em.serve("runs/live-state")  # doctest: +SKIP
    >>> httpx.post(f"{server.url}/predict", json={"id": "q-1", "features": {"x1": 0.3}}).json()  # doctest: +SKIP
    >>> server.stop()  # doctest: +SKIP
    >>> server = em.serve(group="sea-models", events_topic="sea")  # doctest: +SKIP
    >>> httpx.get(f"{server.url}/model").json()["models"]["0"]["sequence"]  # doctest: +SKIP
    12
    """
    settings = KafkaSettings.resolve(kafka, bootstrap_servers=bootstrap_servers, **connection)
    service = PredictionService(state_dir, settings, group=group, events_topic=events_topic, scope=scope,
                                state_key=state_key, key=key, close_loop=close_loop,
                                predictions_topic=predictions_topic, poll_interval_s=poll_interval_s).start()
    try:
        server = service.uvicorn_server(host, port, log_level)
        failed: list[BaseException] = []

        def run() -> None:
            try:
                server.run()
            except BaseException as exc:  # e.g. the port is taken: handed to the caller
                failed.append(exc)

        thread = threading.Thread(target=run, name="eventml-serve", daemon=True)
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not server.started:
            server.should_exit = True
            reason = f"{type(failed[0]).__name__}: {failed[0]}" if failed else "it did not start in time"
            raise EventmlError(f"the prediction service could not listen on {host}:{port} ({reason}); "
                               "pick another port, or port=0 for a free one")
        bound = server.servers[0].sockets[0].getsockname()[1]
    except BaseException:
        service.stop()
        raise
    return ServerHandle(service, server, thread, host, bound)


def run_in_foreground(state_dir: str | os.PathLike | None, kafka: KafkaSettings, *, host: str, port: int,
                      group: str | None = None, events_topic: str | None = None, scope: str = "partition",
                      state_key: str | bytes | None = None, key: str | None = None, close_loop: bool = False,
                      predictions_topic: str | None = None, poll_interval_s: float = 0.2,
                      log_level: str = "info") -> None:
    """``eventml serve``: serve until Ctrl+C (or SIGTERM)."""
    service = PredictionService(state_dir, kafka, group=group, events_topic=events_topic, scope=scope,
                                state_key=state_key, key=key, close_loop=close_loop,
                                predictions_topic=predictions_topic, poll_interval_s=poll_interval_s).start()
    try:
        server = service.uvicorn_server(host, port, log_level)
        model = service.watcher.current
        print(f"eventml serve: {service.source} on http://{host}:{port} (docs: /docs); "
              + (f"serving {model.summary()}" if model else "no committed model yet (503 until the updaters commit)")
              + (f"; closing the loop: events to {service.events_topic!r}, predictions to "
                 f"{service.predictions_topic!r}" if close_loop else ""), flush=True)
        try:
            server.run()
        except KeyboardInterrupt:  # uvicorn re-raises Ctrl+C after its graceful shutdown: the normal way to stop
            pass
        print(f"eventml serve: stopped after {service.served} predictions", flush=True)
    finally:
        service.stop()
