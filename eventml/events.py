"""The wire format: events, labels and predictions as JSON objects in UTF-8.

An event is ``{"id": "e-42", "ts": 1764000000.123, "features": {"x1": 0.3}, "label": 1}``:
``id`` (a string) and ``features`` (an object of numbers, strings, booleans or null) are
required, ``label`` and ``ts`` are optional. Any Kafka client in any language can write and
read it; :func:`decode_event` checks every rule and says which one a record broke.

Examples
--------
>>> from eventml.events import Event, encode_event, decode_event
>>> raw = encode_event(Event("e-1", {"x": 0.5, "color": "red"}, label=1, ts=10.0))
>>> raw
b'{"id":"e-1","ts":10.0,"features":{"x":0.5,"color":"red"},"label":1}'
>>> decode_event(raw).features["color"]
'red'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from eventml.errors import ConfigError, EventFormatError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Event",
    "Label",
    "Prediction",
    "EventFormatError",
    "encode_event",
    "record_key",
    "key_feature",
    "decode_event",
    "decode_event_fields",
    "decode_event_run",
    "NUMBER_TYPES",
    "encode_label",
    "decode_label",
    "encode_prediction",
    "encode_prediction_fields",
    "prediction_dict",
    "decode_prediction",
    "events_to_dataframe",
]

_FEATURE_TYPES = (int, float, str, bool, type(None))
_EXACT_FEATURE_TYPES = frozenset(_FEATURE_TYPES)  # fast path: a set lookup per value
NUMBER_TYPES = frozenset((int, float, bool))
"""The feature value types that are numbers (a boolean is 0 or 1): a model can take them as they are."""
_LABEL_TYPES = (int, float, str, bool)
_EXACT_LABEL_TYPES = frozenset(_LABEL_TYPES)
_EXACT_TS_TYPES = frozenset((int, float))
_orjson_loads, _orjson_dumps, _isfinite = orjson.loads, orjson.dumps, math.isfinite  # per-record calls, bound once


@dataclasses.dataclass(slots=True)
class Event:
    """One event: an id, its features, and optionally its label and event time.

    Parameters
    ----------
    id
        Unique id of the event; also the Kafka record key.
    features
        Feature name to value (number, string, boolean or None).
    label
        The target, if already known; ``None`` means not yet known.
    ts
        Event time in epoch seconds; ``None`` means "use the record timestamp".
    """

    id: str
    features: dict[str, Any]
    label: Any = None
    ts: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The event as the JSON object of the wire format (absent fields left out)."""
        out: dict[str, Any] = {"id": self.id}
        if self.ts is not None:
            out["ts"] = self.ts
        out["features"] = self.features
        if self.label is not None:
            out["label"] = self.label
        return out


@dataclasses.dataclass(slots=True)
class Label:
    """A label that arrives after its event, on the ``labels`` topic."""

    id: str
    label: Any
    ts: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "label": self.label}
        if self.ts is not None:
            out["ts"] = self.ts
        return out


@dataclasses.dataclass(slots=True)
class Prediction:
    """A model's prediction for one event, published on the ``predictions`` topic."""

    id: str
    prediction: Any
    model: str
    model_version: int
    proba: dict[str, float] | None = None
    event_ts: float | None = None
    ts: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """The prediction as the JSON object of the wire format (absent fields left out)."""
        return prediction_dict(self.id, self.prediction, self.model, self.model_version, self.proba, self.event_ts,
                               self.ts)


def prediction_dict(event_id: str, prediction: Any, model: str, model_version: int, proba: Any = None,
                    event_ts: float | None = None, ts: float | None = None) -> dict[str, Any]:
    """A prediction's JSON object from its fields (:class:`Prediction`'s, in its order), without the object.

    The probabilities' keys become strings (``str(label)``); absent fields are left out.

    Examples
    --------
    >>> obj = prediction_dict("e-1", True, "logreg", 3, {False: 0.25, True: 0.75}, event_ts=10.0)
    >>> list(obj), obj["proba"]
    (['id', 'prediction', 'proba', 'model', 'model_version', 'event_ts'], {'False': 0.25, 'True': 0.75})
    """
    out = {"id": event_id, "prediction": prediction}
    if proba is not None:
        out["proba"] = {str(k): v for k, v in proba.items()}
    out["model"] = model
    out["model_version"] = model_version
    if event_ts is not None:
        out["event_ts"] = event_ts
    if ts is not None:
        out["ts"] = ts
    return out


def _dumps(obj: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError as exc:
        raise EventFormatError("not_serializable", f"cannot encode as JSON: {exc}") from None


def key_feature(key: Any) -> str | None:
    """``key`` checked as the feature events are keyed by (see :func:`record_key`): a name or None."""
    if key is not None and (not isinstance(key, str) or not key):
        raise ConfigError(f"key must be the name of a feature (a non-empty string) or None, got {key!r}")
    return key


def record_key(event_id: str, features: dict[str, Any], key: str | None = None) -> bytes:
    """The key of an event's record: the value of feature ``key`` (a string as it is in UTF-8, another
    value as its JSON), or the event's id without ``key`` or when the event lacks that feature (None).

    The producer keys events by it (``em.produce(..., key="user")``) and the prediction service finds a
    request's partition by it, so both place an event alike.

    Examples
    --------
    >>> record_key("e-1", {"user": "ann"}, "user"), record_key("e-1", {"user": 7}, "user")
    (b'ann', b'7')
    >>> record_key("e-1", {"user": None}, "user"), record_key("e-1", {"user": "ann"})
    (b'e-1', b'e-1')
    """
    by = None if key is None else features.get(key)
    if by is None:
        return event_id.encode()
    return by.encode() if isinstance(by, str) else _orjson_dumps(by)


def encode_event(event: Event | dict[str, Any]) -> bytes:
    """Encode an event (an :class:`Event` or a wire-format dict) as UTF-8 JSON bytes.

    The event is validated first, so nothing malformed is ever written.

    Examples
    --------
    >>> encode_event({"id": "a", "features": {"x": 1}})
    b'{"id":"a","features":{"x":1}}'
    """
    if isinstance(event, Event):
        event = event.to_dict()
    validate_event(event)
    return _dumps(event)


def _load_object(raw: bytes | None, what: str) -> dict[str, Any]:
    if raw is None or len(raw) == 0:
        raise EventFormatError("empty", f"the record has no value: {what} must be a JSON object")
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray, memoryview)) else raw
    except UnicodeDecodeError as exc:
        raise EventFormatError("not_utf8", f"the value is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if text.startswith("\ufeff"):  # a UTF-8 byte order mark: RFC 8259 lets a reader ignore it
        text = text[1:]
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise EventFormatError("not_json", f"the value is not JSON: {exc}") from None
    if obj is None:
        raise EventFormatError("empty", f"the value is JSON null: {what} must be a JSON object")
    if not isinstance(obj, dict):
        raise EventFormatError(
            "not_object", f"the value is a JSON {type(obj).__name__}, but {what} must be a JSON object"
        )
    return obj


def _check_id(obj: dict[str, Any]) -> None:
    if "id" not in obj or obj["id"] is None:
        raise EventFormatError("missing_id", "the object has no 'id'")
    if not isinstance(obj["id"], str) or not obj["id"]:
        raise EventFormatError("bad_id", f"'id' must be a non-empty string, got {obj['id']!r}")


def _check_ts(obj: dict[str, Any], field: str = "ts") -> None:
    ts = obj.get(field)
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts)):
        raise EventFormatError("bad_ts", f"'{field}' must be epoch seconds (a number), got {ts!r}")


def _reject_feature_values(features: dict[str, Any]) -> None:
    for name, value in features.items():
        if not isinstance(value, _FEATURE_TYPES):
            raise EventFormatError(
                "bad_feature_value",
                f"feature {name!r} is a {type(value).__name__}; "
                "feature values must be numbers, strings, booleans or null",
            )


def validate_event(obj: dict[str, Any]) -> None:
    """Raise :class:`EventFormatError` unless ``obj`` is a wire-format event."""
    _check_id(obj)
    if "features" not in obj or obj["features"] is None:
        raise EventFormatError("missing_features", "the object has no 'features'")
    features = obj["features"]
    if not isinstance(features, dict):
        raise EventFormatError(
            "bad_features", f"'features' must be an object, got a {type(features).__name__}"
        )
    if not _EXACT_FEATURE_TYPES.issuperset(map(type, features.values())):
        _reject_feature_values(features)
    label = obj.get("label")
    if label is not None and not isinstance(label, _LABEL_TYPES):
        raise EventFormatError(
            "bad_label", f"'label' must be a number, string, boolean or null, got a {type(label).__name__}"
        )
    _check_ts(obj)


def decode_event(raw: bytes | None, default_ts: float | None = None) -> Event:
    """Decode and validate one record value.

    Parameters
    ----------
    raw
        The record value as bytes.
    default_ts
        Event time to use when the event has no ``ts`` (the record timestamp, in seconds).

    Raises
    ------
    EventFormatError
        With ``reason`` set to one of ``empty``, ``not_utf8``, ``not_json``, ``not_object``,
        ``missing_id``, ``bad_id``, ``missing_features``, ``bad_features``,
        ``bad_feature_value``, ``bad_label``, ``bad_ts``.

    Examples
    --------
    >>> decode_event(b'{"id": "a", "features": {"x": 1}}', default_ts=5.0)
    Event(id='a', features={'x': 1}, label=None, ts=5.0)
    """
    return Event(*decode_event_fields(raw, default_ts))


def decode_event_fields(raw: bytes | None, default_ts: float | None = None) -> tuple[str, dict[str, Any], Any, Any]:
    """:func:`decode_event`, the same checks and reasons, as ``(id, features, label, ts)`` without an
    :class:`Event`.

    Examples
    --------
    >>> decode_event_fields(b'{"id": "a", "features": {"x": 1}, "label": 0}', default_ts=5.0)
    ('a', {'x': 1}, 0, 5.0)
    """
    (fields,) = decode_event_run(((raw, default_ts),))
    if type(fields) is not tuple:
        raise fields
    return fields[:4]


def decode_event_run(values: Iterable[tuple[bytes | None, float | None]]) -> list:
    """:func:`decode_event_fields` of each ``(raw, default_ts)`` in turn (the live updater's per-record
    path, for a run of records): per value ``(id, features, label, ts, numeric)``, where ``numeric`` is
    True when every feature value is an ``int``, ``float`` or ``bool`` (:data:`NUMBER_TYPES`), or
    the :class:`EventFormatError` that says why it is not an event (not raised).

    Examples
    --------
    >>> numeric, strings, wrong = decode_event_run([(b'{"id": "a", "features": {"x": 1}}', 5.0),
    ...                                             (b'{"id": "b", "features": {"c": "red"}}', 6.0), (b"[1]", 7.0)])
    >>> numeric, strings, wrong.reason
    (('a', {'x': 1}, None, 5.0, True), ('b', {'c': 'red'}, None, 6.0, False), 'not_object')
    """
    out: list = []
    append = out.append
    loads, numbers, known_values = _orjson_loads, NUMBER_TYPES.issuperset, _EXACT_FEATURE_TYPES.issuperset
    label_types, ts_types, isfinite = _EXACT_LABEL_TYPES, _EXACT_TS_TYPES, _isfinite
    for raw, default_ts in values:
        try:
            obj = loads(raw)  # the fast path: orjson checks UTF-8 itself
        except (orjson.JSONDecodeError, TypeError):
            obj = None
        if type(obj) is dict:
            get = obj.get
            event_id, features, label, ts = get("id"), get("features"), get("label"), get("ts")
            if (type(event_id) is str and event_id and type(features) is dict
                    and (label is None or type(label) in label_types)
                    and (ts is None or (type(ts) in ts_types and isfinite(ts)))):
                if numbers(map(type, features.values())):
                    append((event_id, features, label, default_ts if ts is None else ts, True))
                    continue
                if known_values(map(type, features.values())):
                    append((event_id, features, label, default_ts if ts is None else ts, False))
                    continue
        try:  # the slow path names what is wrong
            obj = _load_object(raw, "an event")  # raises: not UTF-8, not JSON, empty or not an object
            validate_event(obj)
            ts = obj.get("ts")
            append((obj["id"], obj["features"], obj.get("label"), default_ts if ts is None else ts, False))
        except EventFormatError as error:
            append(error)
    return out


def encode_label(label: Label | dict[str, Any]) -> bytes:
    """Encode a late label as UTF-8 JSON bytes."""
    return _dumps(label.to_dict() if isinstance(label, Label) else label)


def decode_label(raw: bytes | None, default_ts: float | None = None) -> Label:
    """Decode and validate a late label: ``{"id": ..., "label": ..., "ts": ...}``."""
    obj = _load_object(raw, "a label")
    _check_id(obj)
    if obj.get("label") is None:
        raise EventFormatError("missing_label", "the label record has no 'label'")
    if not isinstance(obj["label"], _LABEL_TYPES):
        raise EventFormatError("bad_label", f"'label' must be a number, string or boolean, got {obj['label']!r}")
    _check_ts(obj)
    ts = obj.get("ts")
    return Label(obj["id"], obj["label"], default_ts if ts is None else ts)


def encode_prediction(prediction: Prediction) -> bytes:
    """Encode a prediction as UTF-8 JSON bytes."""
    return _dumps(prediction.to_dict())


def encode_prediction_fields(event_id: str, prediction: Any, model: str, model_version: int, proba: Any = None,
                             event_ts: float | None = None, ts: float | None = None) -> bytes:
    """:func:`encode_prediction` of a :class:`Prediction` with these fields, the same bytes, without the object.

    Raises
    ------
    EventFormatError
        With reason ``not_serializable`` when a value has no JSON form.

    Examples
    --------
    >>> encode_prediction_fields("e-1", 1, "logreg", 3, {0: 0.25, 1: 0.75}, 10.0, 11.5)
    b'{"id":"e-1","prediction":1,"proba":{"0":0.25,"1":0.75},"model":"logreg","model_version":3,"event_ts":10.0,"ts":11.5}'
    """
    try:
        if proba is not None and event_ts is not None and ts is not None:  # what the live updater publishes
            named = {}
            for k, v in proba.items():  # a loop: a comprehension is a function call of its own
                named[str(k)] = v
            return _orjson_dumps({"id": event_id, "prediction": prediction, "proba": named, "model": model,
                                  "model_version": model_version, "event_ts": event_ts, "ts": ts})
        return _orjson_dumps(prediction_dict(event_id, prediction, model, model_version, proba, event_ts, ts))
    except TypeError as exc:
        raise EventFormatError("not_serializable", f"cannot encode as JSON: {exc}") from None


def decode_prediction(raw: bytes | None) -> Prediction:
    """Decode a prediction record written by :func:`encode_prediction` or any other client."""
    obj = _load_object(raw, "a prediction")
    _check_id(obj)
    for field in ("prediction", "model", "model_version"):
        if field not in obj:
            raise EventFormatError(f"missing_{field}", f"the prediction has no '{field}'")
    return Prediction(
        obj["id"], obj["prediction"], obj["model"], obj["model_version"],
        obj.get("proba"), obj.get("event_ts"), obj.get("ts"),
    )


def events_to_dataframe(events) -> pd.DataFrame:
    """A DataFrame with columns ``id``, ``ts``, ``label`` and one column per feature.

    A feature named like one of the first three columns is prefixed with ``feature_``.

    Examples
    --------
    >>> df = events_to_dataframe([Event("a", {"x": 1.0}, 0, 1.5), Event("b", {"x": None, "c": "red"})])
    >>> df.columns.tolist(), int(df["x"].isna().sum())
    (['id', 'ts', 'label', 'x', 'c'], 1)
    """
    import pandas as pd

    rows = []
    for event in events:
        row = {"id": event.id, "ts": event.ts, "label": event.label}
        for name, value in event.features.items():
            row[f"feature_{name}" if name in ("id", "ts", "label") else name] = value
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else ["id", "ts", "label"])
