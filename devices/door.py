"""A door or the gate (门/大门): open state, and access events from a card reader."""

from typing import Literal

from pydantic import Field

from devices.base import (
    OPEN_CLOSED,
    ClosingCheck,
    ClosingCondition,
    DeviceKind,
    EventPayload,
    Metric,
    MetricType,
    Text,
)


class AccessEvent(EventPayload):
    type: Literal["access"] = "access"
    credential: Text = Field(min_length=1, max_length=64)
    granted: bool


KIND = DeviceKind(
    name="door",
    label_zh="门",
    label_en="Door",
    metrics=(Metric("open", "", MetricType.STATE, "门", "Door", required=True, words=OPEN_CLOSED),),
    events=(AccessEvent,),
    closing=ClosingCheck("open", ClosingCondition.TRUE),
    # People come and go by the timetable, swiping their cards at the reader.
    simulation="door_traffic",
)
