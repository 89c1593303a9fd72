"""Production serving: real gunicorn, 2 workers, signed webhooks, state shared across workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from conftest import free_port, wait_for_port

from answerkit import parse, sign

TOKEN = "gunicorn-token-0123456789"

APP = """
import os
from answerkit import CallFlow, Hangup, Response, Speak

# A deadline longer than /busy's wait below, so the wait is what ends it.
flow = CallFlow("served", auth_token=os.environ["VOBIZ_AUTH_TOKEN"],
                public_url=os.environ["ANSWERKIT_PUBLIC_URL"],
                state=os.environ["ANSWERKIT_STATE_URL"], deadline=90)

@flow.route("/answer")
def answer(call):
    visits = call.state.incr("visits")
    return Response(Speak(f"visit {visits} pid {os.getpid()}"))

@flow.route("/answer", event="Hangup")
def hangup(call):
    return None

@flow.route("/busy")
def busy(call):
    # Two handlers meet: each leaves its pid and holds its worker until both are in. Two
    # at once can only be in different workers (a sync worker serves one at a time); one
    # that waits alone says so.
    import time
    meet = os.environ["ANSWERKIT_TEST_MEET_DIR"]
    open(os.path.join(meet, str(os.getpid())), "w").close()
    give_up = time.monotonic() + 30
    while len(os.listdir(meet)) < 2 and time.monotonic() < give_up:
        time.sleep(0.01)
    met = len(os.listdir(meet)) >= 2
    return Response(Speak(f"pid {os.getpid()}" if met else f"alone {os.getpid()}"))

app = flow.create_app()
"""


@pytest.fixture(params=["sqlite", "redis"])
def gunicorn_url(request: pytest.FixtureRequest, tmp_path: Path, redis_url: str) -> Iterator[str]:
    (tmp_path / "served_app.py").write_text(APP)
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    state = f"sqlite:///{tmp_path / 'state.db'}" if request.param == "sqlite" else redis_url
    meet = tmp_path / "meet"
    meet.mkdir()
    env = {
        **os.environ,
        "VOBIZ_AUTH_TOKEN": TOKEN,
        "ANSWERKIT_PUBLIC_URL": public,
        "ANSWERKIT_STATE_URL": state,
        "ANSWERKIT_TEST_MEET_DIR": str(meet),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-w",
            "2",
            "--timeout",  # the worker's heartbeat outlasts /busy's longest wait
            "120",
            "-b",
            f"127.0.0.1:{port}",
            "--chdir",
            str(tmp_path),
            "served_app:app",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    wait_for_port(port, proc, "gunicorn")
    yield public
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)


def test_signed_webhooks_share_state_across_workers(gunicorn_url: str) -> None:
    url = gunicorn_url + "/answer"
    params = {
        "CallUUID": "served-1",
        "From": "14155550100",
        "To": "14155550199",
        "Event": "StartApp",
        "CallStatus": "in-progress",
        "Direction": "inbound",
    }
    pids = set()
    texts = []
    for _ in range(60):
        # A new connection each time, so either worker may take it.
        r = requests.post(url, data=params, headers={**sign(url, TOKEN), "Connection": "close"})
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/xml")
        text = parse(r.content).children[0].text or ""
        texts.append(text)
        pids.add(text.split("pid ")[1])
    visits = [int(t.split()[1]) for t in texts]
    assert visits == list(range(1, len(texts) + 1))  # no update lost, whichever worker served
    # Both workers serve, and share the state: two requests at once to a route whose
    # handlers wait for each other are served one by each worker (sequential ones may all
    # land on one worker when the machine is busy), then the next visit counts on from
    # the sequence above.
    busy = gunicorn_url + "/busy"
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(
            lambda _: requests.post(busy, data=params, headers=sign(busy, TOKEN), timeout=100),
            range(2),
        ))  # fmt: skip
    busy_pids = {parse(a.content).children[0].text or "" for a in answers}
    assert len(busy_pids) == 2 and all(p.startswith("pid ") for p in busy_pids), busy_pids
    pids |= {p.split("pid ")[1] for p in busy_pids if p}
    r = requests.post(url, data=params, headers=sign(url, TOKEN))
    texts.append(parse(r.content).children[0].text or "")
    assert texts[-1].startswith(f"visit {len(texts)} ")
    assert len(pids) == 2
    assert requests.post(url, data=params).status_code == 403  # unsigned
    r = requests.post(url, data={**params, "Event": "Hangup"}, headers=sign(url, TOKEN))
    assert r.status_code == 200 and r.content == b""
    # The state outlives the Hangup for the callbacks that follow it (hangup_linger).
    r = requests.post(url, data=params, headers=sign(url, TOKEN))
    assert f"visit {len(texts) + 1} " in (parse(r.content).children[0].text or "")
