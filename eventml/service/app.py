"""The HTTP application: ``POST /predict``, ``GET /model``, ``GET /healthz``, ``GET /metrics`` (FastAPI; docs at
``/docs``).

A live updater with several models answers with its champion (``GET /model`` names it, and every model);
``POST /predict?model=NAME`` answers with any model of the committed state (404 for an unknown name).

Every request reads the watcher's ``current`` once (a :class:`~eventml.service.watcher.CommittedModel`,
or a group's :class:`~eventml.service.group_watcher.GroupModels`) and uses it to the end, so the
watcher's swap never reaches a request half-way; each event is answered by ``model_for(event)``
(in a group: the model of the event's partition), so the app does not care where the state is kept.
The model is asked with the event's features and, for an updater with windows, the windowed features
the updater would give the event (``features_of``: a read-only peek at the committed window state,
at the event's ``ts``, or without one at the request's time, the answer's ``ts``).
Predicting runs on the event loop: a prediction of an eventml learner takes microseconds, far less
than a hop to a worker thread would, and the model is only read (river and scikit-learn predictions
do not change it).

Answers: 200 with the wire format's prediction (one, or a list for a list); 422 for a body that is
not the wire format, ``detail[0].loc`` naming the field; 500 with one sentence when the model
raises (the service stays up); 503 with one sentence while no committed model exists (in a group:
for the partition of one of the events).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from eventml import __version__
from eventml.errors import ModelError
from eventml.events import Prediction
from eventml.metrics.service import CONTENT_TYPE, RequestMetrics
from eventml.service.bodies import BadRequest, parse_events

__all__ = ["create_app"]

JSON = "application/json"


# ------------------------------------------------------------------ schemas, for the OpenAPI docs only
# (bodies are parsed by eventml.service.bodies, which applies the wire format's own rules)

class EventIn(BaseModel):
    """One event of the wire format; ``label`` is ignored for the prediction."""

    id: str = Field(min_length=1, examples=["e-42"])
    features: dict[str, float | int | str | bool | None] = Field(examples=[{"x1": 0.3, "color": "red"}])
    label: float | int | str | bool | None = None
    ts: float | None = Field(None, description="event time, epoch seconds: windowed features are computed at it "
                                              "(without it: at the time of the request, the answer's ts)")


class PredictionOut(BaseModel):
    """A prediction of the wire format."""

    id: str
    prediction: Any
    proba: dict[str, float] | None = None
    model: str
    model_version: int
    event_ts: float | None = None
    ts: float


class Problem(BaseModel):
    detail: Any


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY), status_code=status, media_type=JSON)


def create_app(service: Any) -> FastAPI:
    """The FastAPI app of a :class:`~eventml.service.server.PredictionService`."""
    app = FastAPI(title="eventml prediction service", version=__version__,
                  description="Predictions from the model a live updater committed (in a group of live updaters: "
                              "the model of the event's partition). Only committed states are served; a new "
                              "commit is swapped in without a restart.")
    watcher = service.watcher
    app.add_middleware(RequestMetrics, metrics=service.metrics)

    @app.post("/predict", summary="predict one event or a list of events",
              responses={200: {"model": PredictionOut | list[PredictionOut]}, 422: {"model": Problem},
                         404: {"model": Problem}, 500: {"model": Problem}, 503: {"model": Problem}},
              openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": {
                  "anyOf": [{"$ref": "#/components/schemas/EventIn"},
                            {"type": "array", "items": {"$ref": "#/components/schemas/EventIn"}}]}}}}})
    async def predict(request: Request, model: str | None = None) -> Response:
        try:
            events, many = parse_events(await request.body())
        except BadRequest as error:
            return _json({"detail": error.detail()}, 422)
        served = watcher.current  # read once: a swap from here on does not affect this request
        if served is None:
            return _json({"detail": watcher.no_model_sentence()}, 503)
        now = time.time()
        out = []
        name = model
        try:
            for event in events:
                model = served.model_for(event)
                if model is None:
                    return _json({"detail": watcher.no_model_sentence(event)}, 503)
                if name is not None:  # ?model=NAME: that model of the committed state, not the champion
                    chosen = model.named(name)
                    if chosen is None:
                        return _json({"detail": f"unknown model {name!r}; the committed state has models "
                                                f"{', '.join(model.models) or model.model}"}, 404)
                    model = chosen
                # the committed scorer predicts as the updater does (the live metrics decide label and proba)
                label, proba = model.scorer.predict_event(event.id, model.features_of(event, now))
                out.append(Prediction(event.id, label, model.model, model.model_version, proba, event.ts, now))
        except ModelError as error:
            service.model_errors += 1
            return _json({"detail": f"{error.message}; the service is still up, other requests are answered"}, 500)
        if service.loop is not None:
            service.loop.write(events, out)
        service.served += len(out)
        answers = [p.to_dict() for p in out]
        return _json(answers if many else answers[0])

    @app.get("/model", summary="the committed state being served (in a group: of each partition)",
             responses={503: {"model": Problem}})
    async def model_info() -> Response:
        served = watcher.current
        if served is None:
            return _json({"detail": watcher.no_model_sentence()}, 503)
        return _json(served.describe())

    @app.get("/healthz", summary="liveness, and whether a model is served")
    async def healthz() -> Response:
        served = watcher.current
        return _json({"status": "ok", "model_ready": served is not None and served.ready,
                      **(served.health() if served is not None else {"sequence": None, "model_version": None}),
                      "served": service.served, "model_errors": service.model_errors,
                      "watcher": watcher.status(),
                      "loop": service.loop.status() if service.loop is not None else None})

    @app.get("/metrics", summary="Prometheus metrics: requests, their time, the served model(s)",
             response_class=Response)
    async def metrics() -> Response:
        return Response(service.metrics.exposition(), media_type=CONTENT_TYPE)

    app.openapi_schema = None
    _add_schemas(app)
    return app


def _add_schemas(app: FastAPI) -> None:
    """Put EventIn into the OpenAPI components (the request body refers to it)."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description,
                                 routes=app.routes)
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.setdefault("EventIn", EventIn.model_json_schema(ref_template="#/components/schemas/{model}"))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
