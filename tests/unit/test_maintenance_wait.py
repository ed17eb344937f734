"""maintenance.wait_for_answer: the check that a maintenance change took effect, in the same module call."""

from __future__ import annotations

import pytest

from ansible_collections.healthbutler.recovery.plugins.module_utils.maintenance import wait_for_answer


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def answers(*seq):
    it = iter(seq)
    return lambda: next(it)


@pytest.mark.parametrize("seq, status, header, tries", [
    ([(200, {})], 200, None, 1),
    ([None, (503, {}), (200, {})], 200, None, 3),
    ([(503, {}), (503, {"retry-after": "60"})], 503, "Retry-After", 2),
])
def test_waits_until_the_expected_answer(seq, status, header, tries):
    clock = Clock()
    got = wait_for_answer(answers(*seq), status, header, timeout=5, clock=clock, sleep=clock.sleep)
    assert got["status"] == status and got["tries"] == tries


@pytest.mark.parametrize("last, said", [
    (None, "no answer"),
    ((503, {}), "status 503 without Retry-After"),
    ((200, {}), "status 200"),
])
def test_fails_naming_the_last_answer_after_the_timeout(last, said):
    clock = Clock()
    with pytest.raises(TimeoutError, match="expected status 503 with Retry-After within 1.0s, last seen: " + said):
        wait_for_answer(lambda: last, 503, "Retry-After", timeout=1.0, clock=clock, sleep=clock.sleep)
