"""The background forgetting of a 503's signature (answerkit/_readmit_later.py): one
owner's trouble never holds up another's, and no failure ends its thread."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from answerkit import _readmit_later
from answerkit._readmit_later import LateForgetting

WAIT = 30.0  # generous: these wait on events, never on the clock


@pytest.fixture(autouse=True)
def short_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_readmit_later, "PAUSES", (0.01,))


def test_a_store_that_stays_down_holds_up_no_other_owners_job() -> None:
    # One thread for all: five stalled jobs of one flow kept another flow's healthy job
    # waiting 18 s, past Vobiz's retries.
    late = LateForgetting()
    stalled, released = threading.Event(), threading.Event()

    def stall() -> bool:
        stalled.set()
        released.wait(WAIT)  # a store call that hangs until the test ends
        raise ConnectionError("still down")

    done = threading.Event()
    late.add("flow A", stall, lambda outcome: None)
    assert stalled.wait(WAIT)
    late.add("flow B", lambda: True, lambda outcome: done.set())
    try:
        assert done.wait(WAIT)  # while flow A's forget is still stuck
    finally:
        released.set()


def test_any_failure_is_retried_and_never_ends_the_thread() -> None:
    # CancelledError (a store on an async client) is a BaseException: it ended the thread
    # silently, and every later job of that owner was never run.
    import asyncio

    late = LateForgetting()
    failures = iter([asyncio.CancelledError(), KeyboardInterrupt(), ConnectionError("down")])
    told: list[Any] = []
    done = threading.Event()

    def forget() -> bool:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return True

    late.add("flow", forget, lambda outcome: (told.append(outcome), done.set()))
    assert done.wait(WAIT) and told == [True]
    later = threading.Event()
    late.add("flow", lambda: True, lambda outcome: later.set())
    assert later.wait(WAIT)


def test_a_job_out_of_time_is_told_its_last_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_readmit_later, "RETRY_FOR", 0.0)
    late = LateForgetting()
    told: list[Any] = []
    done = threading.Event()

    def down() -> bool:
        raise ConnectionError("down for good")

    late.add("flow", down, lambda outcome: (told.append(outcome), done.set()))
    assert done.wait(WAIT)
    assert isinstance(told[0], ConnectionError)


def test_a_thread_is_started_again_after_its_queue_ran_dry() -> None:
    late = LateForgetting()
    for _ in range(2):  # the first thread ends once its job is done; the second add starts one
        done = threading.Event()
        late.add("flow", lambda: True, lambda outcome, done=done: done.set())
        assert done.wait(WAIT)


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_can_add_whatever_the_parent_held() -> None:
    # The child inherited the queue's lock held by a parent thread it does not have: its
    # first add() waited for ever (8 of 300 forks under load).
    import os
    import signal

    late = LateForgetting()
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with late._cond:
            holding.set()
            release.wait(WAIT)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert holding.wait(WAIT)
    try:
        pid = os.fork()
        if pid == 0:  # the child: a fresh lock and no queues
            signal.alarm(20)
            done = threading.Event()
            late.add("child flow", lambda: True, lambda outcome: done.set())
            os._exit(0 if done.wait(WAIT) else 1)
        _, status = os.waitpid(pid, 0)
    finally:
        release.set()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_an_owners_queue_is_dropped_once_its_jobs_are_done() -> None:
    late = LateForgetting()
    done = threading.Event()
    late.add(object(), lambda: True, lambda outcome: done.set())
    assert done.wait(WAIT)
    for _ in range(3000):  # the thread drops the queue just after telling
        if not late._queues:
            break
        threading.Event().wait(0.01)
    assert late._queues == {}


def test_a_forget_that_may_have_taken_effect_is_not_tried_again() -> None:
    from answerkit._readmit_later import NoRetry

    late = LateForgetting()
    tries: list[int] = []
    told: list[Any] = []
    done = threading.Event()

    def forget() -> bool:
        tries.append(1)
        raise NoRetry("the store failed while forgetting it") from ConnectionError("lost")

    late.add("flow", forget, lambda outcome: (told.append(outcome), done.set()))
    assert done.wait(WAIT)
    assert len(tries) == 1 and isinstance(told[0], NoRetry)
