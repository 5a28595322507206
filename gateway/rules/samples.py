"""留样 rules: a meal served today with no sample registered by its deadline, and a sample taken
out of the fridge before its retention ended.

Both watch what people register (the 留样 register, gateway/canteen/samples.py), not a
device's readings: the register judges them on the watchdog's injected clock, from its table
in the state store, and hands these findings to the alerts, so that every replica and a
restarted gateway judge the same. The alerts stand on the sample fridge (where the register
keeps the samples), which routes them to the kitchen like the fridge's own alerts. A day's
finding lasts the day: the next day starts clean, and the record keeps the day's verdict.
"""

from __future__ import annotations

from collections.abc import Sequence

from devices import sample_fridge
from gateway.alerting.severity import Severity
from gateway.rules.base import Finding, Rule, RuleSpec, kind_named
from gateway.rules.params import RuleParams, SeverityLevel


class SampleMissing(RuleParams):
    """留样: a meal served today has no sample registered by its deadline (samples: meals)."""

    severity: SeverityLevel = Severity.MAJOR


class SampleDiscardedEarly(RuleParams):
    """留样: a sample discarded before its retention (samples: keep_h) ended."""

    severity: SeverityLevel = Severity.MAJOR


class SampleMissingRule(Rule[SampleMissing]):
    """Judged by the 留样 register (`missing`), not on the fridge's readings: the engine's
    instance on each sample fridge only carries the rule's parameters."""

    name = "sample_missing"


class SampleDiscardedEarlyRule(Rule[SampleDiscardedEarly]):
    """Judged by the 留样 register (`discarded_early`), like `SampleMissingRule`."""

    name = "sample_discarded_early"


def missing(params: SampleMissing, fridge_id: str, day: str, meals: Sequence[tuple[str, str, str, str]],
            since_ms: int, at_ms: int) -> Finding:
    """Today's meals past their deadline without a sample: (id, zh, en, deadline "12:30")."""
    zh = "、".join(m[1] for m in meals)
    en = ", ".join(m[2].lower() for m in meals)
    due_zh = "；".join(f"{m[1]} {m[3]} 前" for m in meals)
    due_en = "; ".join(f"{m[2].lower()} by {m[3]}" for m in meals)
    return Finding(
        SAMPLE_MISSING.id, fridge_id, True, params.severity, since_ms, at_ms,
        f"{day[5:]} {zh}未留样", f"No food samples kept for {en} on {day[5:]}",
        f"应留样时间：{due_zh}。至今未登记留样，请食堂立即留样并登记。",
        f"Samples were due ({due_en}) and none is registered: keep them now and register them.",
        {"day": day, "meals": ",".join(m[0] for m in meals), "since_ms": since_ms},
    )


def discarded_early(params: SampleDiscardedEarly, fridge_id: str, day: str,
                    samples: Sequence[tuple[int, str, str, str]], since_ms: int, at_ms: int) -> Finding:
    """Today's early discards from this fridge: (sample id, dish, when "10:05", reason)."""
    dishes = "、".join(s[1] for s in samples)
    dishes_en = ", ".join(s[1] for s in samples)
    why_zh = "；".join(f"{s[1]} {s[2]} 处理，原因：{s[3]}" for s in samples)
    why_en = "; ".join(f"{s[1]} at {s[2]}, because: {s[3]}" for s in samples)
    return Finding(
        SAMPLE_DISCARDED_EARLY.id, fridge_id, True, params.severity, since_ms, at_ms,
        f"{day[5:]} 留样未满保存时间即处理：{dishes}",
        f"Food samples discarded before their retention ended on {day[5:]}: {dishes_en}",
        f"{why_zh}。如怀疑食物中毒，留样须封存移交，不得处理。",
        f"{why_en}. If food poisoning is suspected, samples are sealed and handed over, never discarded.",
        {"day": day, "samples": ",".join(str(s[0]) for s in samples), "since_ms": since_ms},
    )


def ended(rule: str, fridge_id: str, at_ms: int, severity: Severity) -> Finding:
    """The condition is over: the samples came, or the day it was about has ended."""
    return Finding(rule, fridge_id, False, severity, at_ms, at_ms, "", "")


_FRIDGE = kind_named(sample_fridge.KIND.name)  # the samples are kept in a sample fridge
SAMPLE_MISSING: RuleSpec[SampleMissing] = RuleSpec(SampleMissingRule, SampleMissing, "未按时留样",
                                                   "Meal samples missing", _FRIDGE)
SAMPLE_DISCARDED_EARLY: RuleSpec[SampleDiscardedEarly] = RuleSpec(
    SampleDiscardedEarlyRule, SampleDiscardedEarly, "留样提前处理", "Sample discarded early", _FRIDGE)
RULES = (SAMPLE_MISSING, SAMPLE_DISCARDED_EARLY)
