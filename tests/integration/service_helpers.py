"""Real faults for the service-recovery tests: held connections, held locks, a busy port."""

from __future__ import annotations


class BrokenBuild:
    """A deployed server.js that throws at start: PM2 restarts it until it gives up (errored)."""

    MARK = "hb-test: broken build"

    def __init__(self, box):
        self.path = box.pm2_process()["pm2_env"]["pm_exec_path"]
        with open(self.path, encoding="utf-8") as fh:
            self.original = fh.read()
        with open(self.path, "w", encoding="utf-8") as fh:
            fh.write("throw new Error(%r);\n" % self.MARK + self.original)

    def restore(self):
        with open(self.path, "w", encoding="utf-8") as fh:
            fh.write(self.original)
