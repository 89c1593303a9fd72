"""Issue 4: transfers per second through VobizClient against LocalVobiz, vs raw requests.

Both sides POST the same JSON with the same headers to the same endpoint of one
LocalVobiz, taking turns (interleaved samples of ``INNER`` transfers each). LocalVobiz's
``on_transfer_request`` hook answers True, so it accepts each transfer (202) without
fetching the A-leg URL: the fetch would otherwise dominate and is not the client's cost.
Both clients keep their connection alive between requests, so this measures the per-call
overhead of VobizClient (argument checks, JSON, error mapping, retry loop) over a bare
``requests.Session().post``.

Run: ``.venv/bin/python benchmarks/bench_transfer.py``
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests

from answerkit.testing import LocalVobiz
from benchmarks._timing import BenchResult, Sample, Target, fmt_ns, interleave, table

ALEG_URL = "https://voice.example.com/hold?queue=sales&attempt=1"
ROUNDS = 31
INNER = 50
PRE_ENCODED = "requests.Session().post (pre-encoded body)"


def measure(rounds: int, inner: int) -> tuple[dict[str, Sample], int]:
    """Interleaved samples of each client against a fresh LocalVobiz; and its connections."""
    with LocalVobiz() as vobiz:
        vobiz.on_transfer_request = lambda call_uuid, leg, url, method: True
        call_uuid = vobiz.add_call().call_uuid
        client = vobiz.client()
        # What VobizClient sends, byte for byte: the body and the headers it sets itself.
        body = {"legs": "aleg", "aleg_url": ALEG_URL, "aleg_method": "POST"}
        url = f"{vobiz.base_url}/Account/{vobiz.auth_id}/Call/{call_uuid}/"
        headers = {
            "X-Auth-ID": vobiz.auth_id,
            "X-Auth-Token": vobiz.auth_token,
            "Accept": "application/json",
            "User-Agent": "answerkit-bench requests",
            "Content-Type": "application/json",
        }
        data = json.dumps(body).encode()
        session = requests.Session()

        def with_client() -> object:
            return client.transfer(call_uuid, aleg_url=ALEG_URL)

        def with_requests() -> object:
            r = session.post(url, data=data, headers=headers, timeout=10)
            if r.status_code != 202:
                raise AssertionError(r.status_code)
            return r.json()

        def with_requests_json() -> object:
            r = session.post(url, json=body, headers=headers, timeout=10)
            if r.status_code != 202:
                raise AssertionError(r.status_code)
            return r.json()

        assert with_client().call_uuid == call_uuid  # type: ignore[attr-defined]
        sent = [r for r in vobiz.requests if r.method == "POST"][-1]
        assert sent.json == body, sent.json

        def forget() -> None:
            # The server keeps a log of every request; keep it from growing across rounds.
            vobiz.reset()
            vobiz.add_call(call_uuid)

        cases: dict[str, Callable[[], object]] = {
            PRE_ENCODED: with_requests,
            "requests.Session().post(json=...)": with_requests_json,
            "VobizClient.transfer": with_client,
        }
        got = interleave(cases, rounds=rounds, inner=inner, between=forget)
        connections = vobiz.connections_accepted
        client.close()
        session.close()
    return got, connections


def run(rounds: int = ROUNDS, inner: int = INNER) -> BenchResult:
    started = time.perf_counter()
    res = BenchResult(
        "Transfer API client (issue 4)", ".venv/bin/python benchmarks/bench_transfer.py"
    )
    got, connections = measure(rounds, inner)
    res.seconds = time.perf_counter() - started
    # The stricter baseline: the body encoded once, outside the loop.
    base = got[PRE_ENCODED].median
    rows = [
        [name, fmt_ns(s.median), f"{1e9 / s.median:.0f}", f"{base / s.median:.2f}x"]
        for name, s in got.items()
    ]
    res.tables.append(
        f"Median of {rounds} interleaved rounds of {inner} transfers each, one LocalVobiz "
        "in the same process (its server thread shares the GIL with the client):\n\n"
        + table(["client", "per transfer", "transfers/s", "rate vs pre-encoded post"], rows)
    )
    ratio = base / got["VobizClient.transfer"].median
    res.targets.append(
        Target(4, "VobizClient transfers/s / raw requests.Session().post", ratio, ">=", 0.8)
    )
    res.notes.append(
        f"New connections accepted by LocalVobiz during the last round: {connections} "
        "(both clients reuse their keep-alive connection)."
    )
    return res


def main() -> BenchResult:
    result = run()
    result.print()
    return result


if __name__ == "__main__":
    main()
