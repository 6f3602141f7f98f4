"""For unit tests of carrying out steps: a runtime whose store, events and publisher record what is called."""

from __future__ import annotations

from types import SimpleNamespace

from longshore.domain.records import Finished
from longshore.domain.steps import Step


class Calls(list):
    """The store's, the events' and the publisher's methods `service.carry` calls, recorded (no others exist)."""

    def __init__(self) -> None:
        super().__init__()
        self.keywords: list[dict] = []  #: each call's keyword arguments, in the same order

    def _call(name):
        return lambda self, *args, **kwargs: self.keywords.append(kwargs) or self.append((name, args)) or True

    record_step, release, count_infra_retry = _call("record_step"), _call("release"), _call("count_infra_retry")
    step_done, step_retried, job_finished = _call("step_done"), _call("step_retried"), _call("job_finished")
    send_step, publish_pull = _call("send_step"), _call("publish_pull")
    finishes = True  #: whether the store's `finish` ends the job (False: it had ended or moved on)

    def finish(self, *args, **kwargs):
        self.keywords.append(kwargs)
        self.append(("finish", (*args, kwargs.get("took"))))
        return Finished("busybox", 0.1) if self.finishes else None


def recording_runtime() -> tuple[SimpleNamespace, Calls]:
    """A runtime whose store's attempts and jobs, events and publisher are one `Calls`."""
    calls = Calls()
    return SimpleNamespace(store=SimpleNamespace(attempts=calls, jobs=calls), events=calls, publisher=calls), calls


def sent(calls: Calls) -> list[Step]:
    """The steps sent as messages, in order."""
    return [args[0] for name, args in calls if name == "send_step"]
