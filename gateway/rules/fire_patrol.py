"""A fire-safety patrol round not done in time (消防巡查未按时完成).

No device reports it. The fire patrols (gateway/schedule/patrols.py) raise it on the
watchdog's clock for a round that nobody recorded `fire_patrol.grace_min` after its time, and
clear it when the round is recorded, late; the alerts' machinery does the rest, as for every
rule: the person on duty is told once, then reminded and escalated until someone
acknowledges it. Its parameters are set like any rule's, under the site's `rules:` (off with
`enabled: false`).
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.alerting.severity import Severity
from gateway.rules.base import Finding, Rule, RuleSpec, no_device
from gateway.rules.params import RuleParams, SeverityLevel


class PatrolMissed(RuleParams):
    severity: SeverityLevel = Severity.MAJOR


class PatrolMissedRule(Rule[PatrolMissed]):
    """The rule's declaration for the registry; the engine never runs it (no device)."""

    name = "fire_patrol_missed"


FIRE_PATROL_MISSED = RuleSpec(PatrolMissedRule, PatrolMissed, "消防巡查未按时完成", "Fire patrol not done on time",
                              no_device)
RULES = (FIRE_PATROL_MISSED,)


def settings(site_rules: Mapping[str, Mapping[str, object]]) -> PatrolMissed:
    """The rule's parameters from the site's `rules:` (validated when the site loaded)."""
    return PatrolMissed.model_validate(dict(site_rules.get(FIRE_PATROL_MISSED.id, {})))


def missed(params: PatrolMissed, subject: str, round_at: str, due_ms: int, grace_min: float) -> Finding:
    """Round `round_at` (its local date and time, "12-02 08:00") of `subject` (the round's id
    of its day) has no record `grace_min` after it was due: raised at that moment."""
    late = f"{grace_min:g}"
    return Finding(
        FIRE_PATROL_MISSED.id, subject, True, params.severity, due_ms, due_ms + round(grace_min * 60_000),
        f"{round_at} 的消防巡查未按时完成", f"The {round_at} fire patrol was not done on time",
        f"{round_at} 的消防巡查过了 {late} 分钟仍无记录，请安排巡查并在「消防巡查」中登记。",
        f"No record of the {round_at} fire patrol {late} minutes after it was due: please patrol and record it "
        f"under “Fire patrol”.",
        {"due_ms": due_ms, "grace_min": grace_min},
    )


def recorded(params: PatrolMissed, subject: str, at_ms: int) -> Finding:
    """The round was recorded, late: the alert clears."""
    return Finding(FIRE_PATROL_MISSED.id, subject, False, params.severity, at_ms, at_ms, "", "",
                   facts={"recorded_ms": at_ms})
