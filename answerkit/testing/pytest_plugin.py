"""pytest fixtures for answerkit (registered through the ``pytest11`` entry point).

* ``local_vobiz``: a :class:`~answerkit.testing.LocalVobiz` server, started once per
  session and reset before each test.
* ``call_simulator``: a factory, ``call_simulator(flow, **options) -> CallSimulator``,
  bound to ``local_vobiz``.
* ``sign_request``: ``sign_request(flow, path) -> headers`` (genuine signature headers).
* ``signed_post``: ``signed_post(client, flow, path, params) -> response`` through a
  Flask test client.

The machinery lives in :mod:`answerkit.testing`; this module only wires fixtures, and
imports the simulator and the local server only when a test asks for a fixture. Loading
the plugin still imports the ``answerkit`` package (about 0.15 s, mostly Flask) in every
pytest run of an environment where answerkit is installed; ``-p no:answerkit`` leaves it
out of a run that does not use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

try:
    import pytest
except ImportError as exc:  # a tool that imports every module (autodoc, an import check)
    raise ImportError(
        "answerkit.testing.pytest_plugin is pytest's plugin, loaded by pytest: "
        "pip install pytest (answerkit.testing itself needs no pytest)"
    ) from exc

if TYPE_CHECKING:
    from answerkit.testing.local_vobiz import LocalVobiz
    from answerkit.testing.simulator import (
        CallSimulator,
        CallSimulatorFactory,
        SignedPost,
        SignRequest,
    )


@pytest.fixture(scope="session")
def answerkit_local_vobiz_server() -> Iterator[LocalVobiz]:
    """The session's LocalVobiz server (use ``local_vobiz``, which resets it per test)."""
    from answerkit.testing.local_vobiz import LocalVobiz

    with LocalVobiz() as server:
        yield server


@pytest.fixture
def local_vobiz(answerkit_local_vobiz_server: LocalVobiz) -> LocalVobiz:
    """A LocalVobiz server with no calls, requests, faults, hooks or loans left from other
    tests."""
    from answerkit.testing.sim_remote import release_loans

    server = answerkit_local_vobiz_server
    server.reset()
    # A flow lent a client of this server by a simulator an earlier test never closed gets
    # its own client (or none) back: its REST calls would reach this server unhooked.
    release_loans(server)
    # The hooks too: a simulator an earlier test never closed would otherwise still take
    # this test's hang-ups and transfers over (and adopt its make-calls), and do nothing.
    server.on_make_call = server.on_transfer = None
    server.on_transfer_request = server.on_hangup_request = None
    return server


@pytest.fixture
def call_simulator(local_vobiz: LocalVobiz) -> Iterator[CallSimulatorFactory]:
    """``call_simulator(flow_or_base_url, **options)``: a CallSimulator bound to local_vobiz
    (annotate the argument with :data:`answerkit.testing.CallSimulatorFactory`)."""
    from answerkit.testing.simulator import CallSimulator

    made: list[CallSimulator] = []

    class BoundSimulator(CallSimulator):
        """A CallSimulator on this test's local_vobiz (unless given another), closed after
        the test. A subclass, not a function: its type is CallSimulator's own."""

        def __init__(self, *args: Any, **options: Any) -> None:
            options.setdefault("local_vobiz", local_vobiz)
            super().__init__(*args, **options)
            made.append(self)

    yield BoundSimulator
    for sim in made:
        sim.close()


@pytest.fixture
def sign_request() -> SignRequest:
    """``sign_request(flow, path, token=None) -> headers`` for a webhook to ``path``."""
    from answerkit.testing.simulator import sign_request as helper

    return helper


@pytest.fixture
def signed_post() -> SignedPost:
    """``signed_post(client, flow, path, params, token=None)``: a signed POST webhook."""
    from answerkit.testing.simulator import signed_post as helper

    return helper
