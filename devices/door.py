"""A door or the gate (门/大门): open state, and access events from a card reader."""

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from devices.base import (
    OPEN_CLOSED,
    ClosingCheck,
    ClosingCondition,
    DeviceKind,
    EventPayload,
    Label,
    Metric,
    MetricType,
    Recognition,
    StateWords,
    Text,
)


class AccessEvent(EventPayload):
    LABEL: ClassVar[Label] = Label("刷卡", "Card swipe")
    type: Literal["access"] = "access"
    credential: Annotated[Text, Label("卡号", "Card")] = Field(min_length=1, max_length=64)
    granted: Annotated[bool, Label("结果", "Result", words=StateWords("已开门", "未开门", "door opened", "refused"))]


KIND = DeviceKind(
    name="door",
    label_zh="门",
    label_en="Door",
    metrics=(Metric("open", "", MetricType.STATE, "门", "Door", required=True, words=OPEN_CLOSED),),
    events=(AccessEvent,),
    closing=ClosingCheck("open", ClosingCondition.TRUE),
    # People come and go by the timetable, swiping their cards at the reader.
    simulation="door_traffic",
    recognised=Recognition(frozenset({"open"}), rank=2),
)
