"""Properties that the decoders of every device kind must keep, checked with Hypothesis.

Every test is parametrized over what `devices.kinds()` finds when the tests are collected, and
every strategy is derived from the kind's own metric descriptions and event models. A kind that
is added later is therefore covered without touching this file. The example tests in
`test_kinds.py` pin exact messages; these tests probe the input space around them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from functools import cache
from types import NoneType, UnionType
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import AfterValidator
from pydantic.fields import FieldInfo

from devices import kinds
from devices.base import (
    PREVIEW_BYTES,
    DecodeError,
    DeviceKind,
    Event,
    EventPayload,
    Label,
    Metric,
    MetricType,
    Reason,
    Sample,
    check_one_line,
)

# No example database: it would sit in the repository, and a failure is reproduced from the
# printed example anyway. (Hypothesis still caches source literals in `.hypothesis/constants/`,
# which it git-ignores itself; moving that needs HYPOTHESIS_STORAGE_DIRECTORY or a conftest, as a
# module-level override here would silently move the database of other Hypothesis tests too.)
# No deadline and no too_slow health check: timing on a shared CI runner is noise, not a property
# of the decoders. The example counts keep the file around ten seconds.
FUZZ = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
PROPERTY = settings(FUZZ, max_examples=100)
LIGHT = settings(FUZZ, max_examples=40)
EDGE = settings(FUZZ, max_examples=25)
FEW = settings(FUZZ, max_examples=12)  # for draws from a handful of tokens

KIND_NAMES = sorted(kinds())
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Seconds are told from milliseconds by size (see `devices.base._event_time`): up to 1e11 a
# number is seconds, above it milliseconds.
SECONDS_LIMIT = 100_000_000_000
# The decoders report these only through the gateway, which alone knows history and the clock.
GATEWAY_ONLY = {Reason.COUNTER_DECREASED, Reason.FUTURE_TIMESTAMP, Reason.STALE_TIMESTAMP}
# JSON number tokens that Python's `json` never writes but devices might: pydantic's parser takes
# NaN/Infinity as floats, and a literal too big for a double becomes infinite.
NON_FINITE_TOKENS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "9" * 400, "-" + "9" * 400]
ODD_TOKENS = [*NON_FINITE_TOKENS, "1e-400", "-0", "-0.0", "1E+2", "0.1e1", "1" * 30, '"\\u0000"']
# Not JSON at all, but what a hand-written firmware encoder might emit.
BROKEN_TOKENS = [
    "nan", "inf", "+1", ".5", "1.", "01", "0x10", "True", "None", "'x'", "", '"\\ud800"', '"\\udc00\\ud800"'
]

JsonScalar = bool | int | float | str


def kind_of(name: str) -> DeviceKind:
    return kinds()[name]


def event_types(kind: DeviceKind) -> dict[str, type[EventPayload]]:
    # The decoder keys a kind's events by the default of their `type` field; so does this.
    return {model.model_fields["type"].default: model for model in kind.events}


def bounded_metrics() -> list[Any]:
    return [
        pytest.param(name, m.key, id=f"{name}.{m.key}")
        for name in KIND_NAMES
        for m in kind_of(name).metrics
        if m.type is not MetricType.STATE and (m.minimum is not None or m.maximum is not None)
    ]


def all_metrics() -> list[Any]:
    return [pytest.param(name, m.key, id=f"{name}.{m.key}") for name in KIND_NAMES for m in kind_of(name).metrics]


def kind_events() -> list[Any]:
    return [
        pytest.param(name, type_name, id=f"{name}.{type_name}")
        for name in KIND_NAMES
        for type_name in event_types(kind_of(name))
    ]


def all_event_models() -> list[type[EventPayload]]:
    return [model for name in KIND_NAMES for model in kind_of(name).events]


# --- strategies: valid input ---------------------------------------------------------------


def metric_values(metric: Metric) -> st.SearchStrategy[JsonScalar]:
    """Any value the metric accepts, as a device would send it (JSON integers included)."""
    if metric.type is MetricType.STATE:
        return st.booleans()
    floats = st.floats(metric.minimum, metric.maximum, allow_nan=False, allow_infinity=False)
    # 64-bit integers, the parser's native size; longer ones take its big-number path, which is
    # the totality test's business since their float value is rounded anyway.
    low = -(2**63) if metric.minimum is None else math.ceil(metric.minimum)
    high = 2**63 if metric.maximum is None else math.floor(metric.maximum)
    return floats | st.integers(low, high)


@st.composite
def readings(draw: st.DrawFn, kind: DeviceKind) -> dict[str, JsonScalar]:
    """The metric fields of a valid telemetry payload: required ones always, the rest sometimes."""
    return {m.key: draw(metric_values(m)) for m in kind.metrics if m.required or draw(st.booleans())}


@st.composite
def timestamps(draw: st.DrawFn) -> tuple[int | float | str | None, int | None]:
    """A `ts` value in one of its forms, and the Unix milliseconds it means (None: the time of
    receipt). Milliseconds are whole so that the expectation needs no rounding rule."""
    form = draw(st.sampled_from(["absent", "seconds", "fractional_seconds", "milliseconds", "iso"]))
    if form == "absent":
        return None, None
    if form == "seconds":
        seconds = draw(st.integers(0, SECONDS_LIMIT))
        return seconds, seconds * 1000
    if form == "fractional_seconds":
        ms = draw(st.integers(0, SECONDS_LIMIT * 1000))
        return ms / 1000, ms
    if form == "milliseconds":
        ms = draw(st.integers(SECONDS_LIMIT + 1, 10**15))
        return ms, ms
    local = draw(st.datetimes(datetime(1970, 1, 2), datetime(9999, 12, 30)))  # noqa: DTZ001 - the offset comes next
    local = local.replace(microsecond=local.microsecond // 1000 * 1000)
    offset = timezone(timedelta(minutes=draw(st.integers(-(24 * 60 - 1), 24 * 60 - 1))))
    timespec = draw(st.sampled_from(["auto", "seconds", "milliseconds", "microseconds"]))
    if timespec == "seconds":
        local = local.replace(microsecond=0)  # would be cut off without rounding
    moment = local.replace(tzinfo=offset)
    text = moment.isoformat(timespec=timespec)
    if text.endswith("+00:00") and draw(st.booleans()):
        text = text.removesuffix("+00:00") + "Z"
    if draw(st.booleans()):
        text = text.replace("T", " ")
    return text, (moment - EPOCH) // timedelta(milliseconds=1)


def present_timestamps() -> st.SearchStrategy[tuple[int | float | str | None, int | None]]:
    return timestamps().filter(lambda pair: pair[0] is not None)


def field_values(info: FieldInfo) -> st.SearchStrategy[Any]:
    """Values valid for one field of an event model. Covers the annotations events use today;
    a new one fails loudly here rather than being tested with nonsense."""
    annotation = info.annotation
    if get_origin(annotation) is Literal:
        return st.sampled_from(get_args(annotation))
    if get_origin(annotation) in (Union, UnionType):
        options = [FieldInfo.from_annotation(arg) for arg in get_args(annotation) if arg is not NoneType]
        value = st.one_of(*(field_values(option) for option in options))
        return st.none() | value if NoneType in get_args(annotation) else value
    limits: dict[str, Any] = {}
    for rule in info.metadata:
        if isinstance(rule, AfterValidator) and rule.func is check_one_line:
            limits["alphabet"] = st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp"))
            continue
        if isinstance(rule, Label):
            continue  # how the field reads to people: no constraint on its values
        if isinstance(rule, annotated_types.MinLen):
            limits["min_size"] = rule.min_length
        elif isinstance(rule, annotated_types.MaxLen):
            limits["max_size"] = rule.max_length
        elif isinstance(rule, annotated_types.Ge):
            limits["min_value"] = rule.ge
        elif isinstance(rule, annotated_types.Le):
            limits["max_value"] = rule.le
        else:
            raise NotImplementedError(f"no strategy for the constraint {rule!r}: teach field_values about it")
    if annotation is bool:
        return st.booleans()
    if annotation is str:
        return st.text(**limits)
    if annotation is int:
        return st.integers(**limits)
    if annotation is float:
        return st.floats(**limits, allow_nan=False, allow_infinity=False)
    raise NotImplementedError(f"no strategy for events with {annotation!r} fields: teach field_values about it")


@st.composite
def event_fields(draw: st.DrawFn, model: type[EventPayload]) -> dict[str, Any]:
    """Every field of a valid event except `ts`, `type` included."""
    return {name: draw(field_values(info)) for name, info in model.model_fields.items() if name != "ts"}


# --- strategies: anything a device might send -----------------------------------------------


def object_text(pairs: list[tuple[str, str]]) -> str:
    """A JSON object from already serialized values; keys may repeat, as they may on the wire."""
    return "{" + ",".join(f"{json.dumps(key)}:{value}" for key, value in pairs) + "}"


def encode(text: str) -> bytes:
    # `surrogatepass` turns any lone surrogate into bytes that are not UTF-8: more garbage to test.
    return text.encode("utf-8", "surrogatepass")


def field_names(kind: DeviceKind) -> list[str]:
    names = {m.key for m in kind.metrics} | {"ts", "type"}
    for model in all_event_models():
        names |= set(model.model_fields)
    return sorted(names)


@cache
def json_texts(name: str, *, broken: bool = True) -> st.SearchStrategy[str]:
    """Arbitrary JSON text, whose object keys are mostly the kind's own field names; `broken`
    mixes in tokens that are not JSON."""
    scalars = st.one_of(
        st.sampled_from(ODD_TOKENS + BROKEN_TOKENS if broken else ODD_TOKENS),
        st.sampled_from(["null", "true", "false"]),
        st.integers().map(str),
        st.integers(-(10**400), 10**400).map(str),
        st.floats().map(json.dumps),  # NaN and ±Infinity too, as Python's json writes them
        st.text().map(json.dumps),
        st.text().map(lambda s: json.dumps(s, ensure_ascii=False)),
        timestamps().map(lambda pair: json.dumps(pair[0])),
    )
    keys = st.sampled_from(field_names(kind_of(name))) | st.text(max_size=8)

    def containers(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            st.lists(children, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
            st.lists(st.tuples(keys, children), max_size=6).map(object_text),
        )

    return st.recursive(scalars, containers, max_leaves=12)


@st.composite
def valid_pairs(draw: st.DrawFn, name: str) -> list[tuple[str, str]]:
    kind = kind_of(name)
    pairs = [(key, json.dumps(value)) for key, value in draw(readings(kind)).items()]
    ts, _ = draw(timestamps())
    if ts is not None:
        pairs.append(("ts", json.dumps(ts)))
    if len(kind.events) > 0 and draw(st.booleans()):  # half an event: for decode_event to get further
        model = draw(st.sampled_from(kind.events))
        pairs += [(key, json.dumps(value)) for key, value in draw(event_fields(model)).items()]
    return draw(st.permutations(pairs))


@st.composite
def tampered_objects(draw: st.DrawFn, name: str) -> str:
    """A valid payload with one field set to anything: reaches the checks behind the parser."""
    pairs = draw(valid_pairs(name))
    key = draw(st.sampled_from(field_names(kind_of(name))))
    pairs = [(k, v) for k, v in pairs if k != key]
    pairs.insert(draw(st.integers(0, len(pairs))), (key, draw(json_texts(name))))
    return object_text(pairs)


@st.composite
def damaged_bytes(draw: st.DrawFn, name: str) -> bytes:
    """A valid payload cut short, or with bytes overwritten or inserted."""
    payload = encode(object_text(draw(valid_pairs(name))))
    at = draw(st.integers(0, len(payload)))
    how = draw(st.sampled_from(["cut", "overwrite", "insert"]))
    if how == "cut":
        return payload[:at]
    junk = draw(st.binary(min_size=1, max_size=4))
    resume = at + len(junk) if how == "overwrite" else at
    return payload[:at] + junk + payload[resume:]


@cache
def any_payloads(name: str) -> st.SearchStrategy[bytes]:
    texts = json_texts(name)
    keys = st.sampled_from(field_names(kind_of(name)))
    return st.one_of(
        st.binary(),
        st.binary(min_size=PREVIEW_BYTES - 4, max_size=4 * PREVIEW_BYTES),  # around the preview cut
        texts.map(encode),
        st.lists(st.tuples(keys, texts), max_size=8).map(object_text).map(encode),
        tampered_objects(name).map(encode),
        damaged_bytes(name),
        valid_pairs(name).map(object_text).map(encode),
    )


@st.composite
def payloads_with_ts(draw: st.DrawFn, name: str) -> bytes:
    """Anything with a top-level `ts` that is not null (null means "absent", see the round trip)."""
    keys = st.sampled_from(field_names(kind_of(name)))
    base = draw(st.lists(st.tuples(keys, json_texts(name)), max_size=6) | valid_pairs(name))
    pairs = [(key, value) for key, value in base if key != "ts"]
    good_ts = present_timestamps().map(lambda pair: json.dumps(pair[0]))
    ts = draw(json_texts(name).filter(lambda text: text != "null") | good_ts)
    return encode(object_text([*pairs, ("ts", ts)]))


device_ids = st.text(min_size=1, max_size=24)
received_times = st.integers(0, 4_102_444_800_000)  # up to 2100


# --- checks ----------------------------------------------------------------------------------

Outcome = Sample | Event | tuple[Reason, str, str, str]


Decoder = Callable[[str, bytes, int], Sample | Event]


def outcome(decoder: Decoder, device_id: str, payload: bytes, received_ms: int) -> Outcome:
    """What a decoder made of an input, comparable across calls."""
    try:
        return decoder(device_id, payload, received_ms)
    except DecodeError as err:
        return (err.reason, err.detail, err.preview, err.device_id)


def check_error(err: DecodeError, device_id: str, payload: bytes) -> None:
    assert isinstance(err.reason, Reason)
    assert err.reason not in GATEWAY_ONLY
    assert isinstance(err.detail, str)
    assert err.detail.strip()
    assert err.device_id == device_id
    assert str(err)
    # Previews end up in logs and JSON responses, so they must be valid text whatever the bytes.
    err.preview.encode("utf-8")
    shown = err.preview
    if len(payload) > PREVIEW_BYTES:
        assert shown.endswith("…")
        shown = shown.removesuffix("…")
    try:
        text = payload[:PREVIEW_BYTES].decode("utf-8")
    except UnicodeDecodeError:
        # Bytes that are not UTF-8 are shown escaped (b"\xff" as "\\xff"): the preview is cut at
        # PREVIEW_BYTES bytes of input, which can make up to 4 characters each.
        assert len(shown) <= 4 * PREVIEW_BYTES
    else:
        assert shown == text  # so at most PREVIEW_BYTES characters


def check_sample(kind: DeviceKind, sample: Sample, device_id: str) -> None:
    """Whatever a decoder lets through is something the gateway can store."""
    assert isinstance(sample, Sample)
    assert sample.device_id == device_id
    assert type(sample.ts_ms) is int
    metrics = {m.key: m for m in kind.metrics}
    assert set(sample.values) <= set(metrics)
    assert {m.key for m in kind.metrics if m.required} <= set(sample.values)
    for key, value in sample.values.items():
        metric = metrics[key]
        assert type(value) is float
        assert math.isfinite(value)
        if metric.type is MetricType.STATE:
            assert value in {0.0, 1.0}
        if metric.minimum is not None:
            assert value >= metric.minimum
        if metric.maximum is not None:
            assert value <= metric.maximum


def check_event(kind: DeviceKind, event: Event, device_id: str) -> None:
    assert isinstance(event, Event)
    assert event.device_id == device_id
    assert type(event.ts_ms) is int
    assert event.type in event_types(kind)
    assert "ts" not in event.data
    assert "type" not in event.data


def decode_error(call: Callable[[], object]) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        call()
    return caught.value


# --- 1. totality -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", KIND_NAMES)
@FUZZ
@given(data=st.data(), device_id=device_ids, received_ms=received_times)
def test_decoders_return_or_raise_decode_error(
    name: str, data: st.DataObject, device_id: str, received_ms: int
) -> None:
    # Any other exception escapes and fails the test with its traceback: the gateway counts
    # DecodeError per reason, anything else would be a crash in its message loop.
    kind = kind_of(name)
    payload = data.draw(any_payloads(name), label="payload")
    try:
        sample = kind.decode(device_id, payload, received_ms)
    except DecodeError as err:
        check_error(err, device_id, payload)
    else:
        check_sample(kind, sample, device_id)
    try:
        event = kind.decode_event(device_id, payload, received_ms)
    except DecodeError as err:
        check_error(err, device_id, payload)
    else:
        check_event(kind, event, device_id)


# --- 2. round trip ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", KIND_NAMES)
@PROPERTY
@given(data=st.data(), device_id=device_ids, received_ms=received_times)
def test_valid_payload_round_trips(name: str, data: st.DataObject, device_id: str, received_ms: int) -> None:
    kind = kind_of(name)
    values = data.draw(readings(kind), label="readings")
    ts, ts_ms = data.draw(timestamps(), label="ts")
    payload: dict[str, object] = dict(values)
    if ts is not None:
        payload["ts"] = ts
    elif data.draw(st.booleans(), label="explicit null"):
        payload["ts"] = None  # null is the same as no ts: firmwares without a clock send either
    sample = kind.decode(device_id, json.dumps(payload).encode(), received_ms)
    expected_ms = received_ms if ts_ms is None else ts_ms
    assert sample == Sample(device_id, expected_ms, {key: float(value) for key, value in values.items()})
    assert all(type(v) is float for v in sample.values.values())


# Half a millisecond, plus the error of a double near 1e14 (ts * 1000 is rounded once more).
NEAREST_MS = 0.5 + 2**-6


@pytest.mark.parametrize("name", KIND_NAMES)
@EDGE
@given(data=st.data())
def test_sub_millisecond_time_is_rounded_to_the_nearest_millisecond(name: str, data: st.DataObject) -> None:
    # The round trip above sends whole milliseconds; devices also send finer fractions. These
    # must round, not truncate: int() would be a millisecond early whenever ts * 1000 lands just
    # below a whole number, which the round trip's examples rarely hit.
    kind = kind_of(name)
    values = data.draw(readings(kind), label="readings")
    if data.draw(st.booleans(), label="iso"):
        local = data.draw(st.datetimes(datetime(1970, 1, 2), datetime(9999, 12, 30)), label="moment")  # noqa: DTZ001
        ts: float | str = local.replace(tzinfo=UTC).isoformat()
        exact = (local.replace(tzinfo=UTC) - EPOCH) / timedelta(milliseconds=1)
    else:
        ts = data.draw(st.floats(0, SECONDS_LIMIT), label="seconds")
        exact = float(Fraction(ts) * 1000)
    sample = kind.decode("d", json.dumps({**values, "ts": ts}).encode(), 0)
    assert abs(sample.ts_ms - exact) <= NEAREST_MS


# --- 3. out of range, not finite --------------------------------------------------------------


@pytest.mark.parametrize(("name", "key"), bounded_metrics())
@EDGE
@given(data=st.data())
def test_value_outside_bounds_is_out_of_range(name: str, key: str, data: st.DataObject) -> None:
    kind = kind_of(name)
    metric = kind.metric(key)
    assert metric is not None
    # The nearest doubles beyond the bounds, and anything further out.
    outside: list[st.SearchStrategy[float]] = []
    if metric.minimum is not None:
        outside += [
            st.just(math.nextafter(metric.minimum, -math.inf)),
            st.floats(max_value=metric.minimum, exclude_max=True, allow_infinity=False),
        ]
    if metric.maximum is not None:
        outside += [
            st.just(math.nextafter(metric.maximum, math.inf)),
            st.floats(min_value=metric.maximum, exclude_min=True, allow_infinity=False),
        ]
    value = data.draw(st.one_of(*outside), label="value")
    base = data.draw(readings(kind), label="readings")

    at_bounds = [b for b in (metric.minimum, metric.maximum) if b is not None]
    for bound in at_bounds:  # the bounds themselves are plausible
        assert kind.decode("d", json.dumps({**base, key: bound}).encode(), 0).values[key] == bound

    payload = json.dumps({**base, key: value}).encode()
    err = decode_error(lambda: kind.decode("d", payload, 0))
    assert err.reason is Reason.OUT_OF_RANGE
    assert key in err.detail


@pytest.mark.parametrize(("name", "key"), [*all_metrics(), *(pytest.param(n, "ts", id=f"{n}.ts") for n in KIND_NAMES)])
@FEW
@given(data=st.data())
def test_non_finite_number_is_rejected(name: str, key: str, data: st.DataObject) -> None:
    kind = kind_of(name)
    metric = kind.metric(key)
    token = data.draw(st.sampled_from(NON_FINITE_TOKENS), label="token")
    pairs = [(k, json.dumps(v)) for k, v in data.draw(readings(kind), label="readings").items() if k != key]
    pairs.insert(data.draw(st.integers(0, len(pairs)), label="at"), (key, token))
    payload = encode(object_text(pairs))
    err = decode_error(lambda: kind.decode("d", payload, 0))
    # A state is a boolean, so any number there is the wrong type, finite or not.
    expected = Reason.WRONG_TYPE if metric is not None and metric.type is MetricType.STATE else Reason.NOT_FINITE
    assert err.reason is expected
    assert key in err.detail


@pytest.mark.parametrize("name", [n for n in KIND_NAMES if any(m.required for m in kind_of(n).metrics)])
@EDGE
@given(data=st.data())
def test_missing_required_metric_is_rejected(name: str, data: st.DataObject) -> None:
    kind = kind_of(name)
    key = data.draw(st.sampled_from([m.key for m in kind.metrics if m.required]), label="key")
    values = data.draw(readings(kind), label="readings")
    del values[key]
    err = decode_error(lambda: kind.decode("d", json.dumps(values).encode(), 0))
    assert err.reason is Reason.MISSING_FIELD
    assert key in err.detail


def wrong_values(metric: Metric) -> st.SearchStrategy[str]:
    """JSON text of the wrong type for a metric. Validation is strict: no coercion from strings,
    nor between numbers and booleans, since a firmware that sends either is broken."""
    anything_else = st.one_of(
        st.text().map(json.dumps),
        st.floats(allow_nan=False).map(lambda f: json.dumps(str(f))),  # a number in quotes
        st.sampled_from(['"true"', '"false"', '"on"', '"1"', "[]", "{}", "[1]", '{"value": 1}']),
    )
    if metric.type is MetricType.STATE:
        return anything_else | st.integers().map(str) | st.floats(allow_nan=False, allow_infinity=False).map(json.dumps)
    return anything_else | st.booleans().map(json.dumps)


@pytest.mark.parametrize("name", KIND_NAMES)
@EDGE
@given(data=st.data())
def test_wrong_type_is_rejected(name: str, data: st.DataObject) -> None:
    kind = kind_of(name)
    metric = data.draw(st.sampled_from(kind.metrics), label="metric")
    pairs = [(k, json.dumps(v)) for k, v in data.draw(readings(kind), label="readings").items() if k != metric.key]
    pairs.append((metric.key, data.draw(wrong_values(metric), label="value")))
    err = decode_error(lambda: kind.decode("d", encode(object_text(pairs)), 0))
    assert err.reason is Reason.WRONG_TYPE
    assert metric.key in err.detail


def is_iso(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


# A `ts` that cannot be a time: before 1970 as a number, ISO without an offset (whose zone would
# be a guess), or no ISO 8601 at all.
bad_timestamps = st.one_of(
    st.floats(max_value=math.nextafter(-0.0, -math.inf), allow_nan=False, allow_infinity=False).map(json.dumps),
    st.integers(max_value=-1).map(str),
    st.datetimes().map(lambda moment: json.dumps(moment.isoformat())),
    st.sampled_from(
        ["", "yesterday", "1795219200", "21/11/2026 08:00", "2026-13-01T00:00:00Z", "2026-11-21T08:00:00+25:00"]
    ).map(json.dumps),
    st.text().filter(lambda text: not is_iso(text)).map(json.dumps),
)


@pytest.mark.parametrize("name", KIND_NAMES)
@EDGE
@given(data=st.data())
def test_bad_timestamp_is_rejected(name: str, data: st.DataObject) -> None:
    kind = kind_of(name)
    ts = data.draw(bad_timestamps, label="ts")
    pairs = [(key, json.dumps(value)) for key, value in data.draw(readings(kind), label="readings").items()]
    payload = encode(object_text([*pairs, ("ts", ts)]))
    err = decode_error(lambda: kind.decode("d", payload, 0))
    assert err.reason is Reason.BAD_TIMESTAMP
    assert "ts" in err.detail
    if len(kind.events) > 0:  # events go through the same clock
        fields = data.draw(event_fields(data.draw(st.sampled_from(kind.events), label="model")), label="fields")
        event = encode(object_text([*((k, json.dumps(v)) for k, v in fields.items()), ("ts", ts)]))
        assert decode_error(lambda: kind.decode_event("d", event, 0)).reason is Reason.BAD_TIMESTAMP


# --- 4. events -------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "type_name"), kind_events())
@PROPERTY
@given(data=st.data(), device_id=device_ids, received_ms=received_times)
def test_valid_event_round_trips(
    name: str, type_name: str, data: st.DataObject, device_id: str, received_ms: int
) -> None:
    kind = kind_of(name)
    fields = data.draw(event_fields(event_types(kind)[type_name]), label="fields")
    ts, ts_ms = data.draw(timestamps(), label="ts")
    payload = {**fields, **({} if ts is None else {"ts": ts})}
    event = kind.decode_event(device_id, json.dumps(payload).encode(), received_ms)
    expected_data = {k: v for k, v in fields.items() if k != "type"}
    assert event == Event(device_id, received_ms if ts_ms is None else ts_ms, type_name, expected_data)


@pytest.mark.parametrize("name", KIND_NAMES)
@LIGHT
@given(data=st.data())
def test_unknown_event_type_is_rejected(name: str, data: st.DataObject) -> None:
    kind = kind_of(name)
    known = event_types(kind)
    type_name = data.draw(st.text().filter(lambda t: t not in known), label="type")
    # Other fields do not matter: the type is looked at first, so they may be anything at all.
    other_keys = st.text().filter(lambda key: key not in {"ts", "type"})
    extra = data.draw(st.lists(st.tuples(other_keys, json_texts(name, broken=False)), max_size=4), label="other fields")
    ts, _ = data.draw(timestamps(), label="ts")
    pairs = [*extra, ("type", json.dumps(type_name)), *([] if ts is None else [("ts", json.dumps(ts))])]
    payload = encode(object_text(data.draw(st.permutations(pairs))))
    err = decode_error(lambda: kind.decode_event("d", payload, 0))
    assert err.reason is Reason.UNKNOWN_EVENT
    assert repr(type_name) in err.detail


@pytest.mark.parametrize("name", [n for n in KIND_NAMES if not kind_of(n).events])
@LIGHT
@given(data=st.data())
def test_kind_without_events_rejects_every_event(name: str, data: st.DataObject) -> None:
    kind = kind_of(name)
    models = all_event_models()
    if len(models) > 0 and data.draw(st.booleans(), label="another kind's event"):
        # A real event, valid for the kind that has it: still unknown here.
        payload = json.dumps(data.draw(event_fields(data.draw(st.sampled_from(models))))).encode()
        assert decode_error(lambda: kind.decode_event("d", payload, 0)).reason is Reason.UNKNOWN_EVENT
    else:
        payload = data.draw(any_payloads(name), label="payload")
        check_error(decode_error(lambda: kind.decode_event("d", payload, 0)), "d", payload)


# --- 5. determinism ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", KIND_NAMES)
@LIGHT
@given(data=st.data(), device_id=device_ids, received_ms=received_times)
def test_decoding_is_deterministic(name: str, data: st.DataObject, device_id: str, received_ms: int) -> None:
    kind = kind_of(name)
    payload = data.draw(any_payloads(name), label="payload")
    # Through a copy: a decoder must not depend on the identity of the buffer it was given.
    again = bytes(bytearray(payload))
    decoders: tuple[Decoder, ...] = (kind.decode, kind.decode_event)
    for decoder in decoders:
        assert outcome(decoder, device_id, payload, received_ms) == outcome(decoder, device_id, again, received_ms)


@pytest.mark.parametrize("name", KIND_NAMES)
@LIGHT
@given(data=st.data(), first=received_times, second=received_times)
def test_time_of_receipt_is_ignored_when_ts_is_present(name: str, data: st.DataObject, first: int, second: int) -> None:
    kind = kind_of(name)
    if len(kind.events) > 0 and data.draw(st.booleans(), label="an event"):
        model = data.draw(st.sampled_from(kind.events), label="model")
        ts, _ = data.draw(present_timestamps(), label="ts")
        payload = json.dumps({**data.draw(event_fields(model), label="fields"), "ts": ts}).encode()
    else:
        payload = data.draw(payloads_with_ts(name), label="payload")
    decoders: tuple[Decoder, ...] = (kind.decode, kind.decode_event)
    for decoder in decoders:
        assert outcome(decoder, "d", payload, first) == outcome(decoder, "d", payload, second)
