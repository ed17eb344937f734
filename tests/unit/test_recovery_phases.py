"""recovery_phases: back-to-back phases that add up to the wall time, and the app downtime."""

from ansible_collections.healthbutler.recovery.plugins.module_utils.recovery_phases import phases


def test_a_run_that_ends_serving():
    marks = {"start": "100.0", "maintenance_on": 103.0, "app_stopped": 103.5, "restored": 110.0, "serving": 112.25}
    got = phases(marks, 113.0)
    assert [p["mark"] for p in got["phases"]] == ["start", "maintenance_on", "app_stopped", "restored", "serving"]
    assert [p["seconds"] for p in got["phases"]] == [3.0, 0.5, 6.5, 2.25, 0.75]
    assert sum(p["seconds"] for p in got["phases"]) == got["wall_s"] == 13.0
    assert got["downtime_s"] == 9.25 and "maintenance off" in got["downtime"]


def test_a_failed_run_counts_each_interval_once():
    marks = {"start": 0, "maintenance_on": 1, "app_stopped": 2, "failed": 5, "serving": 8}
    got = phases(marks, 9)
    assert [(p["mark"], p["seconds"]) for p in got["phases"]] == [
        ("start", 1.0), ("maintenance_on", 1.0), ("app_stopped", 3.0), ("failed", 3.0), ("serving", 1.0)]
    assert got["wall_s"] == 9.0 and got["downtime_s"] == 7.0


def test_a_run_that_never_served_again_says_so():
    got = phases({"start": 0, "maintenance_on": 2, "app_stopped": 3}, 10)
    assert got["downtime_s"] == 8.0 and "NOT serving" in got["downtime"]


def test_no_maintenance_no_downtime_and_unknown_marks_ignored():
    got = phases({"start": 0, "something": 4}, 5)
    assert got["phases"] == [{"step": "pre-flight and plan (app serving)", "mark": "start", "seconds": 5.0}]
    assert got["downtime_s"] == 0.0 and got["wall_s"] == 5.0


def test_a_resumed_run_keeps_the_first_runs_marks_in_time_order():
    marks = {"start": 0, "maintenance_on": 1, "app_stopped": 2, "resumed": 60, "restored": 65, "serving": 66}
    got = phases(marks, 67)
    assert [p["mark"] for p in got["phases"]] == ["start", "maintenance_on", "app_stopped", "resumed", "restored",
                                                  "serving"]
    assert got["downtime_s"] == 65.0
