"""recover_memory.yml whose controller dies after the cache clear and the .next/cache move, during the restart.

The re-run must finish that run without clearing or moving again (one RDB copy, one cache set aside for the
incident), and leave the app online with the heap size; ``-e abort=<stamp>`` must put the node args and
.next/cache back instead.
"""

from __future__ import annotations

import glob
import os

import interrupt_helpers as ih
import pytest
from harness import run_playbook

# A memory watch long enough for the kill to land in it; a short one for the re-run.
SLOW = {"memory_recovery_heap_mb": 320, "memory_recovery_settle": 3, "memory_recovery_watch_seconds": 30,
        "memory_recovery_watch_interval": 5}
FAST = dict(SLOW, memory_recovery_watch_seconds=0)


@pytest.fixture
def cached(healthy):
    """Cache keys to clear, a .next/cache with a file; the sandbox's own PM2 definition put back after."""
    box = healthy
    app_dir = box["hb_app_dir"]
    for i in range(10):
        box.redis("SET", "cache:intr:%d" % i, "x")
    os.makedirs(os.path.join(app_dir, ".next", "cache", "images"), exist_ok=True)
    with open(os.path.join(app_dir, ".next", "cache", "images", "a.webp"), "w", encoding="utf-8") as fh:
        fh.write("cached image")
    before = {"rdb": set(glob.glob(os.path.join(box["hb_backup_dir"], "redis", "*.rdb"))),
              "aside": set(glob.glob(os.path.join(app_dir, ".next", "cache.aside-*"))),
              "node_args": box.pm2_process()["pm2_env"]["node_args"]}
    yield box, before
    lock = os.path.join(box["hb_run_root"], "locks", "recover-memory.lock")
    if os.path.exists(lock):
        os.unlink(lock)
    box.pm2("delete", box["hb_app_name"])
    box.pm2("start", os.path.join(box.dir, "ecosystem.config.js"))
    box.wait_health(200, timeout=60)


def killed_during_the_restart(box):
    return ih.killed_at("recover_memory.yml", SLOW, os.path.join(box["hb_run_root"], "locks"), "recover-memory",
                        "cache_aside")


def closed(box, record):
    assert ih.lock(os.path.join(box["hb_run_root"], "locks"), "recover-memory") is None
    return ih.read_json(os.path.join(box["hb_run_root"], "recover-memory", "%s-run" % record["stamp"], "run.json"))


def test_a_memory_recovery_killed_mid_restart_is_finished_by_the_rerun_without_a_second_clear(cached):
    box, before = cached
    app_dir = box["hb_app_dir"]
    record = killed_during_the_restart(box)
    stamp = record["stamp"]
    assert not box.redis("--scan", "--pattern", "cache:intr:*").split()

    rerun = run_playbook("recover_memory.yml", FAST)
    assert rerun.rc == 0, rerun.stdout[-4000:]
    assert "interrupted recover-memory %s" % stamp in rerun.stdout
    assert rerun.task_results("Clear the Redis cache scope") == []  # not cleared again
    box.wait_health(200)
    proc = box.pm2_process()
    assert proc["pm2_env"]["status"] == "online" and "--max-old-space-size=320" in proc["pm2_env"]["node_args"]
    # one RDB copy and one .next/cache set aside for the incident, the latter named by the first run
    assert len(set(glob.glob(os.path.join(box["hb_backup_dir"], "redis", "*.rdb"))) - before["rdb"]) == 1
    aside = set(glob.glob(os.path.join(app_dir, ".next", "cache.aside-*"))) - before["aside"]
    assert aside == {os.path.join(app_dir, ".next", "cache.aside-%s" % stamp)}
    assert os.path.isfile(os.path.join(aside.pop(), "images", "a.webp"))
    assert closed(box, record)["status"] == "ok"


def test_an_interrupted_memory_recovery_is_undone_by_abort(cached):
    box, before = cached
    app_dir = box["hb_app_dir"]
    record = killed_during_the_restart(box)
    assert not os.path.exists(os.path.join(app_dir, ".next", "cache"))

    undo = run_playbook("recover_memory.yml", dict(FAST, abort=record["stamp"]))
    assert undo.rc == 0, undo.stdout[-4000:]
    assert "are not reloaded (a cache)" in undo.stdout
    box.wait_health(200)
    assert box.pm2_process()["pm2_env"]["node_args"] == before["node_args"]
    assert os.path.isfile(os.path.join(app_dir, ".next", "cache", "images", "a.webp"))
    assert set(glob.glob(os.path.join(app_dir, ".next", "cache.aside-*"))) == before["aside"]
    assert closed(box, record)["status"] == "aborted"
