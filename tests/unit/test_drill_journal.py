"""Catalogue, verdicts, journal and checklist."""

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils import drill_catalog, drill_journal, drill_measure

T0 = "2026-11-28T10:00:00.000Z"


def at(seconds):
    return drill_measure.iso(drill_measure.parse_iso(T0) + seconds)


def writes(*attempts):
    return [{"t": drill_measure.parse_iso(T0) + t, "status": s, "id": i, "ms": 1} for t, s, i in attempts]


def scenario(name="app_crash", **over):
    return drill_catalog.select([name], {name: over} if over else None)[0]


def good_run(**changes):
    run = {
        "marks": {"scenario_start": at(-10), "inject_start": at(0), "inject_end": at(1), "recover_start": at(5),
                  "recover_end": at(20), "steady_after_start": at(20), "steady_after_end": at(25),
                  "scenario_end": at(40)},
        "statuses": {"steady_before": "ok", "writer": "ok", "inject": "ok", "detect": "ok", "recover": "ok",
                     "steady_after": "ok", "rollback": "ok"},
        "detection": {"status": "detected", "detected_at": at(4), "p_level": "P0", "scenarios": [1]},
        "recovery": {"rc": 0, "playbook": "restart_app.yml"},
        "writes": writes((-1, 201, 10), (0.5, 0, None), (20, 201, 11)),
        "present_ids": [10, 11],
    }
    run.update(changes)
    return run


def evaluate(sc, run):
    return drill_journal.evaluate(sc, run["marks"], run["statuses"], {}, run["detection"], run["recovery"],
                                  run["writes"], run["present_ids"], run.get("facts"))


def test_catalogue_has_every_runbook_drill():
    assert set(drill_catalog.SCENARIOS) >= {
        "app_crash", "app_crash_loop", "db_down", "connection_exhaustion", "memory_leak", "lock_contention",
        "slow_queries", "data_loss", "bad_release", "uploads_lost", "corrupt_backup"}
    for name, sc in drill_catalog.SCENARIOS.items():
        assert sc["fault"] and sc["recovery"]["playbook"].endswith(".yml") and sc["probe"] in drill_catalog.PROBES, name
        assert sc["runbook_scenario"] in (1, 2, 3, 4, 5), name


def test_select_rejects_unknown_and_duplicates():
    with pytest.raises(drill_catalog.CatalogError, match="unknown scenario.*nope.*valid: app_crash"):
        drill_catalog.select(["nope"])
    with pytest.raises(drill_catalog.CatalogError, match="twice"):
        drill_catalog.select(["db_down", "db_down"])
    assert [s["name"] for s in drill_catalog.select([])] == drill_catalog.DEFAULT_ORDER


def test_override_replaces_recovery():
    sc = scenario(recovery={"playbook": "/tmp/x.yml", "vars": {}})
    assert sc["recovery"] == {"playbook": "/tmp/x.yml", "vars": {}, "expect": "success"}
    assert drill_catalog.SCENARIOS["app_crash"]["recovery"]["playbook"] == "restart_app.yml"


def test_missing_recovery_playbook_is_unavailable(tmp_path):
    (tmp_path / "backup.yml").write_text("---\n")
    assert drill_catalog.availability(scenario("data_loss"), str(tmp_path)) == "unavailable: recover_db.yml missing"
    (tmp_path / "recover_db.yml").write_text("---\n")
    assert drill_catalog.availability(scenario("data_loss"), str(tmp_path)) is None


def test_render_vars_fills_restore_point():
    got = drill_catalog.render_vars(drill_catalog.SCENARIOS["data_loss"]["recovery"]["vars"], {"restore_point": "rp1"})
    assert got == {"recover_mode": "rows", "target": {"name": "rp1"}, "tables": ["health_data"], "mode": "missing"}
    cluster = drill_catalog.render_vars(drill_catalog.SCENARIOS["data_loss_cluster"]["recovery"]["vars"],
                                        {"restore_point": "rp1"})
    assert cluster == {"recover_mode": "pitr", "target": {"name": "rp1"}}


def test_passed_scenario_measures_detect_rto_rpo():
    entry = evaluate(scenario(), good_run())
    assert entry["status"] == "passed" and not entry["deviated"]
    assert entry["detection"]["time_to_detect_s"] == 4.0 and entry["detection"]["p_level_match"]
    assert entry["rto_s"] == 25.0
    assert entry["rpo"]["lost_writes"] == 0 and entry["writes"]["failed"] == 1
    assert entry["target_met"] == {"response": True, "resolution": True, "rpo": True}


def test_failed_recovery_is_a_deviation_with_evidence():
    run = good_run(recovery={"rc": 2, "evidence": "Restart: boom"},
                   statuses=dict(good_run()["statuses"], recover="failed", steady_after="failed"))
    entry = evaluate(scenario(), run)
    assert entry["status"] == "failed" and entry["deviated"]
    assert any("recovery restart_app.yml failed (rc=2, expected success): Restart: boom" in d
               for d in entry["deviations"])
    assert entry["rto_s"] is None
    assert entry["rollbacks"][0]["status"] == "ok"


def test_misclassification_and_lost_writes_fail():
    run = good_run(detection={"status": "detected", "detected_at": at(4), "p_level": "P2", "scenarios": [4]},
                   present_ids=[11])
    entry = evaluate(scenario(), run)
    assert entry["status"] == "failed"
    text = " | ".join(entry["deviations"])
    assert "detected as scenario [4], expected 1" in text and "classified P2, expected P0" in text
    assert "1 acknowledged write(s) lost" in text


def test_rto_over_target_fails():
    run = good_run()
    run["marks"]["steady_after_end"] = at(3601)
    entry = evaluate(scenario(), run)
    assert entry["target_met"]["resolution"] is False
    assert any("RTO 3601 s over the P0 resolution target 3600 s" in d for d in entry["deviations"])


def test_expected_failure_of_verification_is_ok():
    sc = scenario("corrupt_backup")
    run = good_run(recovery={"rc": 2}, detection={"status": "detected", "detected_at": at(9), "p_level": None,
                                                  "scenarios": [5]})
    entry = evaluate(sc, run)
    assert entry["recovery"]["status"] == "ok" and entry["status"] == "passed", entry["deviations"]


def test_not_steady_before_is_aborted():
    run = good_run(statuses={"steady_before": "failed"})
    assert evaluate(scenario(), run)["status"] == "aborted"


def test_unavailable_is_never_passed():
    entry = drill_journal.evaluate(scenario(), {}, {"unavailable": "unavailable: restart_app.yml missing"})
    assert entry["status"] == "unavailable"
    row = drill_journal.table_rows([entry])[0]
    assert row["result"] == "unavailable: restart_app.yml missing"


def test_pitr_cutoff_rpo():
    run = good_run(writes=writes((-2, 201, 10), (2, 201, 11), (20, 201, 12)), present_ids=[10, 12],
                   facts={"cutoff_epoch": drill_measure.parse_iso(T0) + 1})
    entry = evaluate(scenario("data_loss_cluster"), run)
    assert entry["rpo"]["lost_writes"] == 0 and entry["rpo"]["discarded_after_cutoff"] == 1
    row = drill_journal.table_rows([entry])[0]
    assert row["rpo"] == "0 lost, 1 discarded"


def test_rows_mode_data_loss_counts_every_write_and_shows_no_downtime():
    run = good_run(writes=writes((-2, 201, 10), (2, 201, 11), (20, 201, 12)), present_ids=[10, 11, 12],
                   facts={"cutoff_epoch": drill_measure.parse_iso(T0) + 1})
    entry = evaluate(scenario("data_loss"), run)
    assert entry["rpo"]["lost_writes"] == 0 and entry["rpo"]["discarded_after_cutoff"] == 0
    row = drill_journal.table_rows([entry])[0]
    assert row["rpo"] == "0 lost" and row["downtime_s"] == "0.0"
    lost = evaluate(scenario("data_loss"), dict(run, present_ids=[10, 12]))
    assert lost["rpo"]["lost_writes"] == 1 and lost["status"] == "failed"


def test_deleted_rows_not_brought_back_are_a_deviation():
    run = good_run()
    entry = drill_journal.evaluate(scenario("data_loss"), run["marks"], dict(run["statuses"], recovered="failed"),
                                   {"recovered": "180 of 200 deleted row(s) back in health_data"}, run["detection"],
                                   run["recovery"], run["writes"], run["present_ids"], run.get("facts"))
    assert entry["status"] == "failed"
    assert any("180 of 200 deleted row(s) back" in d for d in entry["deviations"])


def test_journal_and_checklist():
    passed = evaluate(scenario(), good_run())
    unavailable = drill_journal.evaluate(scenario("db_down"), {}, {"unavailable": "unavailable: x.yml missing"})
    j = drill_journal.journal([passed, unavailable], at(-20), at(60), "inventories/sandbox", "sandbox", "/r")
    assert j["status"] == "failed" and j["counts"] == {"passed": 1, "unavailable": 1}
    items = {i["zh"]: i for i in j["checklist"]}
    assert len(items) == 8 and items["演练执行"]["done"] and items["演练执行"]["by"] == "drill"
    assert not items["参与人员通知"]["done"] and items["参与人员通知"]["by"] == "manual"
    table = drill_journal.format_table(drill_journal.table_rows(j["scenarios"]))
    assert table.count("\n") == 3 and "| app_crash " in table and "5m/1h" in table


def test_unmeasured_rpo_is_a_deviation():
    entry = evaluate(scenario(), good_run(present_ids=None))
    assert entry["status"] == "failed" and entry["rpo"] is None
    assert "RPO not measured" in entry["deviations"][0]


def test_failed_injection_is_injection_failed_and_nothing_is_graded():
    run = good_run(statuses={"steady_before": "ok", "writer": "ok", "inject": "failed", "rollback": "ok"},
                   recovery={}, detection={})
    entry = drill_journal.evaluate(scenario(), run["marks"], run["statuses"], {"inject": "PM2 did not give up"},
                                   {}, {}, run["writes"], run["present_ids"])
    assert entry["status"] == "injection_failed"
    assert entry["deviations"] == ["injection failed: PM2 did not give up"]
    assert entry["detection"] is None and entry["recovery"] is None and entry["rto_s"] is None


NOT_SEEN = {"seen": False, "observation": "ROW EXCLUSIVE on health_data granted at once: nothing blocks an INSERT",
            "bound_s": 20, "expect": "an INSERT's lock on health_data cannot be had", "after_injection_s": 21.0}


def test_a_fault_never_seen_is_injection_failed_not_missed():
    """Detection would have missed (nothing to see), and the recovery found nothing to do: neither is graded."""
    run = good_run(detection={"status": "missed", "detail": "not detected after 4 diagnosis run(s)"},
                   statuses={"steady_before": "ok", "writer": "ok", "inject": "ok", "effect": "not_seen",
                             "rollback": "ok", "steady_after": "ok"})
    entry = drill_journal.evaluate(scenario("lock_contention"), run["marks"], run["statuses"], {},
                                   run["detection"], run["recovery"], run["writes"], run["present_ids"], {},
                                   NOT_SEEN)
    assert entry["status"] == "injection_failed"
    assert entry["deviations"] == [
        "the fault never took hold: an INSERT's lock on health_data cannot be had not seen within 20 s; last look: "
        "ROW EXCLUSIVE on health_data granted at once: nothing blocks an INSERT"]
    assert entry["detection"] is None and entry["rpo"] is None and entry["target_met"] is None
    assert entry["effect"] == NOT_SEEN
    book = drill_journal.journal([entry], at(-10), at(60), "sandbox", "sandbox", "/r")
    assert book["status"] == "failed"
    assert book["not_passed"] == [{"name": "lock_contention", "status": "injection_failed",
                                   "why": entry["deviations"][0]}]
    assert drill_journal.table_rows([entry])[0]["effect_s"] == "not seen"


def test_a_failed_rollback_is_reported_with_the_injection_failure():
    statuses = {"steady_before": "ok", "writer": "ok", "inject": "ok", "effect": "not_seen", "rollback": "failed",
                "steady_after": "failed"}
    entry = drill_journal.evaluate(scenario("lock_contention"), good_run()["marks"], statuses,
                                   {"rollback": "holder still running", "steady_after": "/health 503"}, {}, {}, [],
                                   None, {}, NOT_SEEN)
    assert entry["status"] == "injection_failed"
    assert entry["deviations"][1:] == ["rollback of the injection: holder still running",
                                       "steady state not back after the rollback: /health 503"]


def test_a_seen_fault_is_graded_and_its_effect_kept():
    seen = {"seen": True, "observation": "GET /health: no answer", "after_injection_s": 0.8, "bound_s": 30}
    run = good_run()
    entry = drill_journal.evaluate(scenario(), run["marks"], dict(run["statuses"], effect="ok"), {},
                                   run["detection"], run["recovery"], run["writes"], run["present_ids"], {}, seen)
    assert entry["status"] == "passed" and entry["effect"]["after_injection_s"] == 0.8
    assert drill_journal.table_rows([entry])[0]["effect_s"] == "0.8"


@pytest.mark.parametrize("statuses, verdict", [
    ({"steady_before": "ok", "inject": "ok", "effect": "ok", "rollback": "ok", "steady_after": "ok"}, "proved"),
    ({"steady_before": "ok", "inject": "ok", "effect": "ok", "rollback": "ok", "steady_after": "failed"}, "failed"),
    ({"steady_before": "ok", "inject": "ok", "effect": "ok", "rollback": "failed", "steady_after": "ok"}, "failed"),
])
def test_inject_only_judges_effect_rollback_and_steady_state(statuses, verdict):
    seen = {"seen": True, "observation": "503", "after_injection_s": 1.2, "bound_s": 30}
    entry = drill_journal.evaluate(scenario("db_down"), good_run()["marks"], statuses, {}, {}, {}, [], None, {},
                                   seen, mode="inject_only")
    assert entry["status"] == verdict and entry["mode"] == "inject_only"
    assert entry["detection"] is None and entry["rto_s"] is None
    book = drill_journal.journal([entry], at(-10), at(60), "sandbox", "sandbox", "/r")
    assert book["status"] == ("passed" if verdict == "proved" else "failed")


def test_every_catalogue_scenario_has_an_effect_probe():
    for sc in drill_catalog.select():
        assert sc["effect"]["kind"] in ("http", "sql", "pm2_log", "files_missing", "checksum"), sc["name"]
        assert sc["effect"]["describe"], sc["name"]
    with pytest.raises(drill_catalog.CatalogError, match="app_crash has no effect probe"):
        drill_catalog.select(["app_crash"], {"app_crash": {"effect": {}}})


def test_verification_must_name_the_corrupted_dump():
    sc = scenario("corrupt_backup")
    facts = {"corrupted_dump": "/b/dumps/hb_1.dump"}
    caught = good_run(recovery={"rc": 2, "evidence": "FAILED: dump_integrity[hb_1.dump]"}, facts=facts,
                      detection={"status": "detected", "detected_at": at(9), "p_level": None, "scenarios": [5]})
    assert evaluate(sc, caught)["status"] == "passed"
    vague = dict(caught, recovery={"rc": 2, "evidence": "FAILED: offsite_copy"})
    assert evaluate(sc, vague)["deviations"] == ["verify_backups.yml did not name hb_1.dump in its failure"]
