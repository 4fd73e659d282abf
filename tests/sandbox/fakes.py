"""Stand-ins for the supervisor and its worker processes, with calls of known cost, for unit
tests of the timing logic (the real ones run in the other tests of this directory)."""

from __future__ import annotations

import time
from collections.abc import Callable


class FakeWorker:
    """A worker whose calls cost ``per_call_s`` of CPU time each (slept too with ``sleep``, so
    that wall and CPU clocks agree and a budget is spent)."""

    pid = 0  # no process: nothing to pin, nothing in /proc

    def __init__(self, per_call_s: float, role: str = "baseline", sleep: bool = False) -> None:
        self.per_call_s, self.role, self.sleep = per_call_s, role, sleep
        self.spent = 0.0
        self.loops = 0
        self.samples: list[int] = []  # the loop count of every sample taken

    def cpu(self) -> float:
        return self.spent


class FakeSupervisor:
    """What ``timing`` asks of the supervisor: ``ask`` answers prepare/go/verify as a worker
    would, ``load`` starts a worker whose calls cost ``speeds(role, k)`` seconds (``k``: the
    role's k-th process, from 1)."""

    def __init__(
        self,
        n_cases: int = 1,
        speeds: Callable[[str, int], float] | None = None,
        sleep: bool = False,
    ) -> None:
        self.n_cases, self.speeds, self.sleep = n_cases, speeds, sleep
        self.deadline = time.monotonic() + 60
        self.started: dict[str, int] = {}

    def load(self, role: str, quiet: bool = False) -> tuple[FakeWorker, dict]:
        assert self.speeds is not None, "FakeSupervisor(speeds=...) to start workers"
        k = self.started[role] = self.started.get(role, 0) + 1
        return FakeWorker(self.speeds(role, k), role, self.sleep), {"n_cases": self.n_cases}

    def ask(self, worker: FakeWorker, message: dict, what: str, deadline=None) -> dict:  # noqa: ANN001
        if message["cmd"] == "prepare":
            worker.loops = message["loops"]
        elif message["cmd"] == "go":
            worker.samples.append(worker.loops)
            cost = worker.loops * self.n_cases * worker.per_call_s
            worker.spent += cost
            if worker.sleep:
                time.sleep(cost)
        return {}

    def retire(self, worker: FakeWorker) -> None:
        pass
