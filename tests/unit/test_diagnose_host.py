"""Host collector: /proc parsers and ps."""

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils import diagnose_host as host

MEMINFO = """MemTotal:        4000000 kB
MemFree:          100000 kB
MemAvailable:     360000 kB
Buffers:           10000 kB
Cached:           200000 kB
SwapTotal:       1000000 kB
SwapFree:         900000 kB
"""


def test_meminfo_uses_available_memory():
    mem = host.parse_meminfo(MEMINFO)
    assert mem["used_percent"] == 91.0
    assert mem["swap_used_mb"] == pytest.approx(97.7, abs=0.1)


def test_meminfo_without_memavailable_falls_back_to_free_buffers_cached():
    text = "\n".join(line for line in MEMINFO.splitlines() if not line.startswith("MemAvailable"))
    assert host.parse_meminfo(text)["used_percent"] == 92.2  # (4000000 - 310000) / 4000000


def test_loadavg_per_core():
    load = host.parse_loadavg("3.00 2.00 1.00 2/300 12345\n", 2)
    assert load == {"load1": 3.0, "load5": 2.0, "load15": 1.0, "cores": 2, "load_per_core": 1.5}


def test_cpu_percent_between_two_samples():
    before = host.parse_cpu_times("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 1 1 1\n")
    after = host.parse_cpu_times("cpu  180 0 180 720 120 0 0 0 0 0\n")
    assert host.cpu_percent(before, after) == 80.0
    assert host.cpu_percent(before, before) == 0.0
    with pytest.raises(ValueError):
        host.parse_cpu_times("intr 1 2 3")


def test_ps_top_by_memory_names_commands_only():
    text = "  10  2048 0.5 postgres\n 20 409600 12.0 node /srv/app/d\n  x junk\n 30 1024 0.0 bash\n"
    top = host.parse_ps(text, 2)
    assert [p["pid"] for p in top] == [20, 10]
    assert top[0] == {"pid": 20, "rss_mb": 400.0, "cpu_percent": 12.0, "command": "node /srv/app/d"}


def test_disk_usage_of_a_missing_path_reports_its_parent(tmp_path):
    usage = host.disk_usage(str(tmp_path / "not" / "yet"))
    assert usage["exists"] is False and 0 <= usage["used_percent"] <= 100


def test_collect_survives_ps_failure(fake_runner):
    fake_runner.add(r"^ps ", 1, "", "ps: not found")
    out = host.collect(fake_runner, paths=["/"], cpu_sample_s=0)
    assert out["ok"] is False and out["errors"] == ["ps: rc=1 ps: not found"]
    assert "memory" in out and out["disks"][0]["path"] == "/"
