# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE)
"""Targets by P-level and the escalation path, as the drill and the incident report use them.

The P-level table belongs to ``incident_policy`` (diagnosis area). Until that module is on main the
runbook's table is kept here, in ``_runbook_targets`` only; ``targets_for`` prefers incident_policy.
"""

from __future__ import annotations

MINUTE = 60
HOUR = 3600

# runbook 响应时间: P0 立即 / <1h, P1 <15min / <4h, P2 <1h / <24h, P3 <4h / <72h.
# "立即" (immediately) is read as 5 minutes for a measurable drill target.
_IMMEDIATE_S = 5 * MINUTE
_RUNBOOK = {
    "P0": {"response_s": _IMMEDIATE_S, "resolution_s": 1 * HOUR},
    "P1": {"response_s": 15 * MINUTE, "resolution_s": 4 * HOUR},
    "P2": {"response_s": 1 * HOUR, "resolution_s": 24 * HOUR},
    "P3": {"response_s": 4 * HOUR, "resolution_s": 72 * HOUR},
}

# runbook 升级路径: (from minute, role). Any P0 goes to the CTO at once.
ESCALATION = [
    (0, "oncall", "值班工程师", "on-call engineer"),
    (15, "team_lead", "团队负责人", "team lead"),
    (30, "tech_director", "技术总监", "technical director"),
    (60, "cto", "CTO", "CTO"),
]


def _runbook_targets(p_level):
    return dict(_RUNBOOK[p_level]) if p_level in _RUNBOOK else None


def targets_for(p_level):
    """``{"response_s", "resolution_s"}`` for a P-level, or None for no/unknown level.

    Taken from ``incident_policy.targets`` (minutes) when that module is present; a response of 0
    ("立即") is measured against 5 minutes.
    """
    try:
        from ansible_collections.healthbutler.recovery.plugins.module_utils import incident_policy
        got = incident_policy.targets(p_level)
        if got:
            return {"response_s": int(got["response_minutes"] * MINUTE) or _IMMEDIATE_S,
                    "resolution_s": int(got["resolution_minutes"] * MINUTE)}
        return None
    except (ImportError, AttributeError, KeyError, TypeError, ValueError):
        return _runbook_targets(p_level)


def escalation_step(elapsed_s, p_level=None):
    """The escalation step reached after ``elapsed_s`` seconds: dict with key, zh and en names."""
    if p_level == "P0":
        _minutes, key, zh, en = ESCALATION[-1]
        return {"key": key, "zh": zh, "en": en, "since_min": 0}
    reached = ESCALATION[0]
    for step in ESCALATION:
        if elapsed_s >= step[0] * MINUTE and (step[0] < 60 or elapsed_s > 60 * MINUTE):
            reached = step
    _minutes, key, zh, en = reached[:4]
    return {"key": key, "zh": zh, "en": en, "since_min": reached[0]}
