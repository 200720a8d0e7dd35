"""The wire format: round trips and every malformed case, without a broker."""

from __future__ import annotations

import pytest

from eventml.events import (
    Event, Label, Prediction, decode_event, decode_label, decode_prediction, encode_event, encode_label,
    encode_prediction, encode_prediction_fields,
)
from eventml.errors import EventFormatError, EventmlError


@pytest.mark.parametrize("event", [
    Event("e-1", {"x1": 0.3, "color": "red", "flag": True, "missing": None, "n": 3}, label=1, ts=1764000000.123),
    Event("e-2", {}, label="cat"),
    Event("e-3", {"x": -1e300}, label=None, ts=0.0),
    Event("ünïcode-✓", {"naïve": "日本"}, label=2.5),
])
def test_an_event_survives_encode_and_decode(event):
    assert decode_event(encode_event(event)) == event


def test_absent_label_and_ts_are_left_out_of_the_record():
    assert encode_event(Event("a", {"x": 1})) == b'{"id":"a","features":{"x":1}}'


def test_missing_ts_defaults_to_the_record_timestamp():
    assert decode_event(b'{"id": "a", "features": {}}', default_ts=12.5).ts == 12.5
    assert decode_event(b'{"id": "a", "features": {}, "ts": 3}', default_ts=12.5).ts == 3


def test_a_dict_in_the_wire_format_encodes_like_an_event():
    as_dict = {"id": "a", "ts": 1.0, "features": {"x": 1}, "label": 0}
    assert encode_event(as_dict) == encode_event(Event("a", {"x": 1}, 0, 1.0))


@pytest.mark.parametrize("raw, reason", [
    (None, "empty"), (b"", "empty"), (b"null", "empty"),
    (b"\xc3\x28", "not_utf8"),
    (b"{", "not_json"), (b"NaN", "not_json"),
    (b"42", "not_object"), (b"[]", "not_object"), (b'"s"', "not_object"), (b"true", "not_object"),
    (b'{"features": {}}', "missing_id"), (b'{"id": null, "features": {}}', "missing_id"),
    (b'{"id": 1, "features": {}}', "bad_id"), (b'{"id": "", "features": {}}', "bad_id"),
    (b'{"id": "a"}', "missing_features"), (b'{"id": "a", "features": null}', "missing_features"),
    (b'{"id": "a", "features": "x=1"}', "bad_features"), (b'{"id": "a", "features": [1]}', "bad_features"),
    (b'{"id": "a", "features": {"x": [1]}}', "bad_feature_value"),
    (b'{"id": "a", "features": {"x": {"y": 1}}}', "bad_feature_value"),
    (b'{"id": "a", "features": {}, "label": [1]}', "bad_label"),
    (b'{"id": "a", "features": {}, "ts": "now"}', "bad_ts"),
    (b'{"id": "a", "features": {}, "ts": true}', "bad_ts"),
])
def test_each_malformed_record_is_rejected_with_its_reason(raw, reason):
    with pytest.raises(EventFormatError) as info:
        decode_event(raw)
    assert info.value.reason == reason
    assert isinstance(info.value, EventmlError)
    assert str(info.value)  # a sentence for a person


def test_encoding_validates_so_nothing_malformed_is_written():
    with pytest.raises(EventFormatError, match="feature 'x'"):
        encode_event({"id": "a", "features": {"x": object()}})
    with pytest.raises(EventFormatError) as info:
        encode_event({"features": {}})
    assert info.value.reason == "missing_id"


def test_a_label_and_a_prediction_survive_encode_and_decode():
    label = Label("e-42", 1, ts=5.0)
    assert decode_label(encode_label(label)) == label
    prediction = Prediction("e-42", 1, "logreg", 17, proba={0: 0.2, 1: 0.8}, event_ts=1.0, ts=2.0)
    back = decode_prediction(encode_prediction(prediction))
    assert back.proba == {"0": 0.2, "1": 0.8}  # JSON object keys are strings on the wire
    assert (back.id, back.prediction, back.model, back.model_version) == ("e-42", 1, "logreg", 17)


@pytest.mark.parametrize("fields", [
    ("e-1", True, "logreg", 3, {False: 0.25, True: 0.75}, 1.0, 2.0),
    ("e-2", "cat", "gnb", 0, {"cat": 1.0}, None, 2.0),
    ("e-3", 1, "sgd", 9, None, 1.5, None),
    ("e-4", None, "logreg", 0, {}, None, None),
    ("e-5", 2.5, "linreg", 1, None, 1.0, 2.0),
])
def test_a_prediction_encoded_from_its_fields_is_the_same_bytes_as_from_the_object(fields):
    assert encode_prediction_fields(*fields) == encode_prediction(Prediction(*fields))


def test_a_prediction_without_a_json_form_is_not_serializable_either_way():
    for encode in (lambda *f: encode_prediction(Prediction(*f)), encode_prediction_fields):
        with pytest.raises(EventFormatError) as info:
            encode("e-1", object(), "logreg", 0)
        assert info.value.reason == "not_serializable"


def test_a_label_record_without_a_label_is_rejected():
    with pytest.raises(EventFormatError) as info:
        decode_label(b'{"id": "e-1"}')
    assert info.value.reason == "missing_label"
