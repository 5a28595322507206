"""The safety record as data: what the JSON format of the daily record (每日安全检查记录), the
canteen record and the weekly and monthly summaries holds. Facts are language-neutral
numbers and times; where a sentence is needed it comes in Chinese and English."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from gateway.alerting.alerts import AlertState
from gateway.alerting.severity import Severity
from gateway.auth.actor import Actor


class ItemStatus(StrEnum):
    PASS = "pass"  # noqa: S105 (a status, not a password): the sensors vouch for it
    FAIL = "fail"  # the sensors show it failed, or a person reported a problem
    MANUAL = "manual"  # a person must check it: no sensor covers it, or its data has a gap
    DONE = "done"  # a person checked it and found it in order
    NOT_REQUIRED = "not_required"  # not asked for that day (a lamp on a weekend)
    PENDING = "pending"  # today, not due yet (the UV window has not ended)


class Category(StrEnum):
    FRIDGE = "fridge"  # 留样冰箱
    UV = "uv"  # 紫外线消毒
    DOOR = "door"  # 闭园关门
    WATER = "water"  # 夜间跑水
    POWER = "power"  # 闭园用电
    CANTEEN = "canteen"  # 食堂登记
    GUARD = "guard"  # 门卫巡查
    FIRE = "fire"  # 消防巡查


Result = Literal["ok", "problem"]


class SpanOut(BaseModel):
    start: datetime
    end: datetime
    minutes: float


class FridgeFacts(BaseModel):
    kind: Literal["fridge"] = "fridge"
    range_min_c: float
    range_max_c: float
    alarm_delay_min: float
    lowest_c: float | None
    highest_c: float | None
    mean_c: float | None = Field(description="time-weighted over the day's covered time")
    minutes_out: float
    excursions: int
    short_excursions: int = Field(description="shorter than the alarm delay: door openings, not failures")
    longest: SpanOut | None


class UvFacts(BaseModel):
    kind: Literal["uv"] = "uv"
    window: SpanOut | None
    minutes_on: float
    minutes_required: float


class DoorFacts(BaseModel):
    kind: Literal["door"] = "door"
    closing: datetime | None = Field(description="when the building closed that day; None on a closed day")
    closed_since: datetime | None = Field(description="start of the last closed stretch of the day; None if open")
    open_after_hours: bool
    openings: int
    minutes_open: float
    grace_min: float
    longest: SpanOut | None


class WaterFacts(BaseModel):
    kind: Literal["water"] = "water"
    threshold_lpm: float
    continuous_min: float
    minutes_flowing: float
    loss_m3: float = Field(description="lost by the day's leaks (runs that failed the item), as their alerts give it")
    cost_yuan: float
    longest: SpanOut | None


class PowerFacts(BaseModel):
    kind: Literal["power"] = "power"
    base_w: float | None
    limit_w: float | None
    duration_min: float
    minutes_above: float
    waste_kwh: float = Field(description="wasted by the day's load left on (runs that failed the item), as the alerts "
                             "and the energy report give it")
    waste_yuan: float
    longest: SpanOut | None


Facts = Annotated[FridgeFacts | UvFacts | DoorFacts | WaterFacts | PowerFacts, Field(discriminator="kind")]


class Completion(BaseModel):
    result: Result
    note: str = Field(description="what the person found; for a problem, the problem")
    by: Actor = Field(description="who did the check: the signed-in account")
    at: datetime


class Entry(BaseModel):
    """One stage of a rectification, as a person wrote it."""

    text: str
    by: Actor
    at: datetime


class Rectification(BaseModel):
    """整改 of a failed item: 存在问题, 整改措施, 整改结果; each written by someone, some time
    (the outcome often later, by another person). A manual check reported as a problem has
    its note as the problem until someone writes one."""

    problem: Entry | None = None
    measure: Entry | None = None
    outcome: Entry | None = None


class Signature(BaseModel):
    by: Actor
    at: datetime


class Signatures(BaseModel):
    """Who signed the day's record: 检查人, 负责人, and the 园长's review (after both)."""

    inspector: Signature | None = None
    responsible: Signature | None = None
    review: Signature | None = None


class Item(BaseModel):
    id: str = Field(description="stable: e.g. fridge:sample-fridge, door@teaching, canteen:tableware")
    category: Category
    building: str | None
    room: str | None
    device: str | None
    subject: str = Field(description="the device's, room's or building's name from the site file")
    check_zh: str
    check_en: str
    status: ItemStatus
    needs_check: bool = Field(description="a person must vouch for it (status manual before completion)")
    page: str | None = Field(None, description="the dashboard's view where people keep it (a register's: "
                                               "samples, patrol, sweep; device: its device's page); None: it is "
                                               "checked in the ledger")
    detail_zh: str
    detail_en: str
    facts: Facts | None = None
    gaps: list[SpanOut] = Field(default_factory=list, description="stretches without data")
    completion: Completion | None = None
    rectification: Rectification | None = Field(None, description="of a failed item, once someone wrote one")


class AlertLine(BaseModel):
    id: int
    rule: str
    device: str
    building: str
    room: str
    severity: Severity
    state: AlertState
    title_zh: str
    title_en: str
    first: datetime
    last: datetime
    cleared: datetime | None
    acked_by: str | None = Field(description="as recorded: a login, or rule:, key:, system")
    acked_by_actor: Actor | None = Field(description="who acknowledged it, as people read it")
    acked_at: datetime | None
    ack_comment: str | None


class DayInfo(BaseModel):
    date: date
    kind: str
    kind_zh: str = Field(description="the kind in words, as this site says it: 开园日 for a kindergarten")
    kind_en: str
    school_day: bool
    name_zh: str
    name_en: str


Counts = dict[ItemStatus, int]


class SafetyRecord(BaseModel):
    site: str
    site_name: str
    day: DayInfo
    start: datetime
    end: datetime
    as_of: datetime = Field(description="readings are judged up to here: the end of the day, or now")
    complete: bool
    counts: Counts
    items: list[Item]
    alerts: list[AlertLine]
    signatures: Signatures


class HourRow(BaseModel):
    hour: int = Field(description="local hour of the readings, 0–23")
    min_c: float | None
    max_c: float | None
    mean_c: float | None
    readings: int


class FridgeLog(BaseModel):
    device: str
    name: str
    range_min_c: float
    range_max_c: float
    hours: list[HourRow]


# ------------------------------------------------- 留样 register (gateway/canteen/samples.py)


class RetentionTemperature(BaseModel):
    """The sample's fridge over the sample's retention: from when it was taken to when it was
    discarded (or now), judged against the fridge's allowed range."""

    range_min_c: float
    range_max_c: float
    lowest_c: float | None
    highest_c: float | None
    minutes_out: float = Field(description="minutes the readings held outside the allowed range")
    minutes_no_data: float = Field(description="minutes no reading vouches for (the fridge was silent)")
    readings: int


class RetainedSample(BaseModel):
    """One dish of one meal in the 留样 register."""

    id: int
    day: date = Field(description="the meal's local date")
    meal: str = Field(description="the meal's id in the site's samples settings, e.g. lunch")
    meal_zh: str
    meal_en: str
    dish: str
    weight_g: float
    fridge: str
    fridge_name: str
    taken_at: datetime
    taken_by: Actor
    discard_after: datetime = Field(description="the earliest it may be discarded: taken_at + keep_h")
    discarded_at: datetime | None
    discarded_by: Actor | None
    early_reason: str | None = Field(description="why it was discarded before discard_after")
    temperature: RetentionTemperature | None = Field(description="None where the fridge has no temperature range")


class CanteenRecord(BaseModel):
    site: str
    site_name: str
    day: DayInfo
    as_of: datetime
    complete: bool
    compliant: bool | None = Field(description="every fridge passed; None while one needs a manual check")
    fridges: list[FridgeLog]
    counts: Counts
    items: list[Item]
    samples: list[RetainedSample] = Field(default_factory=list, description="the day's 留样 register")


class DayLine(BaseModel):
    day: DayInfo
    counts: Counts
    alerts: int
    signatures: Signatures


class ItemRef(BaseModel):
    date: date
    id: str
    category: Category
    subject: str
    check_zh: str
    check_en: str
    status: ItemStatus
    detail_zh: str
    detail_en: str
    completion: Completion | None = None
    rectification: Rectification | None = None


class SafetySummary(BaseModel):
    site: str
    site_name: str
    period: str = Field(description="2026-W42 or 2026-10")
    kind: Literal["week", "month"]
    first: date
    last: date = Field(description="the last day reported: the period's, or today")
    as_of: datetime
    days: list[DayLine]
    totals: Counts
    open_manual: list[ItemRef] = Field(description="manual checks nobody has done: the blank ledger")
    fails: list[ItemRef] = Field(description="failed items, with their rectification")
    alerts: int = Field(description="alerts active at some time in the period")
