"""The types of the pytest plugin's fixtures, for tests that are type-checked themselves.

Kept apart from :mod:`answerkit.testing.pytest_plugin`, which imports pytest: these names
are importable from :mod:`answerkit.testing` without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from answerkit.app import CallFlow
    from answerkit.testing.local_vobiz import LocalVobiz
    from answerkit.testing.sim_transport import WSGIApp
    from answerkit.testing.simulator import CallSimulator, InputProvider

__all__ = ["CallSimulatorFactory"]


class CallSimulatorFactory(Protocol):
    """The ``call_simulator`` fixture: ``call_simulator(flow, **options)`` makes a
    :class:`~answerkit.testing.CallSimulator` bound to the test's ``local_vobiz`` (closed
    after the test), taking the options of ``CallSimulator`` itself::

        def test_menu(call_simulator: CallSimulatorFactory) -> None:
            t = call_simulator(flow).call("main", digits="2").run()
    """

    def __call__(
        self,
        target: CallFlow | str | None = None,
        *,
        app: WSGIApp | None = None,
        flow: CallFlow | None = None,
        auth_token: str | None = None,
        public_url: str | None = None,
        local_vobiz: LocalVobiz | None = None,
        gather_timeout: str = "next",
        dial_action_event: str = "Redirect",
        timeout: float = 10.0,
        input_provider: InputProvider | None = None,
    ) -> CallSimulator: ...
