"""What the property tests of the JSON vendor codecs (Zigbee2MQTT, Tasmota, Shelly) share:
JSON texts built from each codec's own odd scalars and keys, and what "decoding is total"
means for any of them."""

from __future__ import annotations

import json
import math

from hypothesis import strategies as st

from devices.base import DecodeError, Reason, preview
from devices.vendors import Decoded, VendorSource

STATES = ("on", "online", "open", "leak")  # the values that come out as booleans


def object_text(pairs: list[tuple[str, str]]) -> str:
    """A JSON object from serialized values; keys may repeat, as they may on the wire."""
    return "{" + ",".join(f"{json.dumps(key)}:{value}" for key, value in pairs) + "}"


def json_texts(scalars: st.SearchStrategy[str], keys: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Any JSON value as text, nested, from `scalars` (serialized) under `keys`."""
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
            st.lists(st.tuples(keys, children), max_size=6).map(object_text),
        ),
        max_leaves=12,
    )


def decode_or_error(source: VendorSource, device_id: str, part: str, payload: bytes) -> Decoded | DecodeError:
    try:
        return source.decode(device_id, part, payload)
    except DecodeError as err:  # any other exception fails the test
        return err


def assert_total(result: Decoded | DecodeError, device_id: str, payload: bytes) -> None:
    """A decode error names the device, a reason, a detail and the payload's preview; decoded
    values are booleans for states and finite floats for the rest, the time whole ms or None."""
    if isinstance(result, DecodeError):
        assert (result.device_id, result.preview) == (device_id, preview(payload))
        assert result.reason in Reason
        assert result.detail
        return
    for key, value in result.values.items():
        if key in STATES:
            assert isinstance(value, bool)
        else:
            assert type(value) is float
            assert math.isfinite(value)
    assert result.ts_ms is None or type(result.ts_ms) is int
