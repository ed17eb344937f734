"""Fakes shared by unit tests of code that waits and polls."""


class Clock:
    """Fake time for code taking ``sleep`` and ``clock`` callables: sleeping advances it."""

    def __init__(self):
        self.now = 0.0

    def sleep(self, seconds):
        self.now += seconds

    def __call__(self):
        return self.now


def sequence(outputs):
    """A FakeRunner stdout callable answering successive calls with successive outputs (the last repeats)."""
    state = {"i": 0}

    def answer(argv, data):
        out = outputs[min(state["i"], len(outputs) - 1)]
        state["i"] += 1
        return out

    return answer
