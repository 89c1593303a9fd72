"""The exception tree: every error survives pickling and copying with its details."""

from __future__ import annotations

import copy
import pickle

import pytest

from answerkit import errors

CASES = [
    errors.ElementError("Gather: bad", element="Gather", attribute="numDigits", value=40),
    errors.ParseError("unknown tag", line=3, element="Say"),
    errors.ConfigurationError("no token"),
    errors.StateError("store down"),
    errors.StateValueError("cannot store Decimal"),
    errors.ArgumentError("bad url", field="aleg_url"),
    errors.TransferArgumentError("bad legs", field="legs"),
    errors.ConnectError("refused", method="POST", url="http://127.0.0.1:1/", call_uuid="u1"),
    errors.TimeoutError("slow", method="POST", call_uuid="u1"),
    errors.ValidationError("bad", status=422, body={"error": "x"}, request_id="r1"),
    errors.AuthenticationError("who", status=401),
    errors.CallNotActiveError("gone", status=404, call_uuid="u2"),
    errors.RateLimitedError("slow down", status=429, retry_after=2.5),
    errors.ServerError("oops", status=503, body="<html>"),
]


@pytest.mark.parametrize("exc", CASES, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("clone", [lambda e: pickle.loads(pickle.dumps(e)), copy.copy])
def test_an_error_survives_pickling_and_copying_with_its_details(exc: Exception, clone) -> None:
    back = clone(exc)
    assert type(back) is type(exc)
    assert str(back) == str(exc)
    assert back.args == exc.args
    assert vars(back) == vars(exc)


def test_a_parse_error_keeps_one_line_prefix_after_a_round_trip() -> None:
    back = pickle.loads(pickle.dumps(errors.ParseError("bad", line=7)))
    assert str(back) == "line 7: bad" and back.line == 7


def test_the_clients_timeout_is_pythons_timeout_too_and_no_star_import_shadows_it() -> None:
    import builtins

    import answerkit

    # `from answerkit import *` put answerkit's TimeoutError over the built-in one: a
    # socket's timeout then went uncaught by `except TimeoutError`.
    assert "TimeoutError" not in answerkit.__all__
    assert answerkit.TimeoutError is errors.TimeoutError  # still importable by name
    namespace: dict[str, object] = {}
    exec("from answerkit import *", namespace)
    assert "TimeoutError" not in namespace
    with pytest.raises(builtins.TimeoutError):
        raise errors.TimeoutError("no answer in 5 s", method="POST")
    assert isinstance(errors.TimeoutError("x"), errors.TransportError)
