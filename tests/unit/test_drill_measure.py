"""RTO, RPO and downtime from the writer log; targets and escalation."""

import json

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils import drill_measure as m
from ansible_collections.healthbutler.recovery.plugins.module_utils import drill_targets


def log(*attempts):
    """attempts: (t, status, id)."""
    return "\n".join(json.dumps({"t": t, "status": s, "id": i, "ms": 3}) for t, s, i in attempts)


OUTAGE = log((100.0, 201, 1), (100.1, 201, 2), (100.2, 0, None), (102.2, 503, None), (104.0, 500, None),
             (104.1, 201, 3), (104.2, 201, 4))


def test_parse_skips_torn_and_foreign_lines():
    text = OUTAGE + '\n{"t": 105, "status": 201, "id": 5\nnot json\n{"other": 1}\n'
    writes = m.parse_writes(text)
    assert [w["id"] for w in writes if w["id"]] == [1, 2, 3, 4]


def test_acknowledged_needs_201_and_id():
    writes = m.parse_writes(log((1, 201, None), (2, 200, 7), (3, 201, 8)))
    assert [w["id"] for w in m.acknowledged(writes)] == [8]


def test_failed_writes_are_downtime_not_loss():
    writes = m.parse_writes(OUTAGE)
    summary = m.write_summary(writes)
    assert summary["failed"] == 3 and summary["acknowledged"] == 4
    assert summary["downtime_s"] == pytest.approx(104.1 - 100.2)
    assert summary["outages"][0]["failed"] == 3
    assert m.rpo(writes, present_ids=[1, 2, 3, 4])["lost_writes"] == 0


def test_write_summary_since_injection():
    writes = m.parse_writes(OUTAGE)
    assert m.write_summary(writes, since=104.05)["attempts"] == 2


def test_outage_until_the_end_is_open():
    writes = m.parse_writes(log((1, 201, 1), (2, 0, None), (3, 0, None)))
    assert m.outages(writes) == [{"start": 2.0, "end": 3.0, "failed": 2}]


def test_rpo_counts_lost_acknowledged_writes_and_span():
    writes = m.parse_writes(OUTAGE)
    got = m.rpo(writes, present_ids=[1, 4])
    assert got["lost_writes"] == 2 and got["lost_ids"] == [2, 3]
    assert got["lost_span"]["seconds"] == pytest.approx(4.0)


def test_rpo_with_cutoff_separates_writes_discarded_by_pitr():
    writes = m.parse_writes(OUTAGE)
    got = m.rpo(writes, present_ids=[1, 2], cutoff=100.15)
    assert got["lost_writes"] == 0 and got["discarded_after_cutoff"] == 2
    assert got["cutoff"].startswith("1970-01-01T00:01:40.15")


def test_rto():
    assert m.rto("2026-01-01T00:00:00Z", "2026-01-01T00:01:30.500Z") == 90.5
    assert m.rto("2026-01-01T00:00:00Z", None) is None


def test_id_range():
    assert m.id_range(m.parse_writes(OUTAGE)) == (1, 4)
    assert m.id_range([]) == (None, None)


@pytest.mark.parametrize("level, response, resolution", [
    ("P0", 300, 3600), ("P1", 900, 4 * 3600), ("P2", 3600, 24 * 3600), ("P3", 4 * 3600, 72 * 3600)])
def test_targets_follow_the_runbook(level, response, resolution):
    assert drill_targets.targets_for(level) == {"response_s": response, "resolution_s": resolution}


def test_no_targets_without_level():
    assert drill_targets.targets_for(None) is None
    assert drill_targets.targets_for("P9") is None


@pytest.mark.parametrize("minutes, level, key", [
    (0, "P1", "oncall"), (14.9, "P1", "oncall"), (15, "P1", "team_lead"), (29.9, "P2", "team_lead"),
    (30, "P2", "tech_director"), (60, "P2", "tech_director"), (60.1, "P3", "cto"), (0, "P0", "cto"),
])
def test_escalation_path(minutes, level, key):
    assert drill_targets.escalation_step(minutes * 60, level)["key"] == key


def test_targets_prefer_incident_policy(monkeypatch):
    import types

    from ansible_collections.healthbutler.recovery.plugins import module_utils

    fake = types.ModuleType("incident_policy")
    fake.targets = lambda p: {"response_minutes": 0, "resolution_minutes": 30} if p == "P0" else None
    monkeypatch.setitem(__import__("sys").modules, module_utils.__name__ + ".incident_policy", fake)
    monkeypatch.setattr(module_utils, "incident_policy", fake, raising=False)
    assert drill_targets.targets_for("P0") == {"response_s": 300, "resolution_s": 1800}
    assert drill_targets.targets_for("P1") is None


import pytest as _pytest  # noqa: E402


@_pytest.mark.parametrize("first,last,explained", [
    ("2026-12-02T01:56:16.300Z", "2026-12-02T01:56:16.300Z", True),
    ("2026-12-02T01:56:10.000Z", "2026-12-02T01:56:16.300Z", False),
    ("2026-12-02T01:56:16.300Z", "2026-12-02T01:56:19.000Z", False),
])
def test_replication_window_explains_writes_lost_at_the_kill(first, last, explained):
    from ansible_collections.healthbutler.recovery.plugins.module_utils import drill_measure
    rpo = {"lost_writes": 2, "lost_span": {"first": first, "last": last}}
    facts = {"killed_at": "2026-12-02T01:56:16.147Z", "replay_lag_s_at_kill": 0.5, "lag_bytes_at_kill": 0}
    got = drill_measure.replication_window(rpo, facts)
    assert got["explained"] is explained and got["lost_writes"] == 2
    assert drill_measure.replication_window({"lost_writes": 0, "lost_span": None}, facts)["explained"] is True
    assert drill_measure.replication_window(rpo, {}) is None
