"""Checking that a webhook comes from Vobiz: its signature, and that it is no replay
(spec §3). The dispatcher asks :class:`SignatureGate` before it reads a request's body.
"""

from __future__ import annotations

from collections.abc import Sequence

from answerkit._deadline import loggable
from answerkit._dispatch_webhook import WebhookRequest
from answerkit.signature import Verifier, header_value, public_url_candidates


class SignatureGate:
    """Signature and replay checking for one flow (spec §3)."""

    def __init__(
        self,
        auth_tokens: Sequence[str],
        public_url: str | None,
        trusted_proxies: int,
        replay_window: float,
    ) -> None:
        self._verifier = Verifier(auth_tokens)
        self.public_url = public_url
        self.trusted_proxies = trusted_proxies
        self.replay_window = replay_window

    def check(self, req: WebhookRequest) -> tuple[str | None, tuple[str, ...], str]:
        """The signature check: (None, or why the request is refused; its replay keys; the
        URL tried, for the log). The replay keys are for :meth:`StateStore.remember_all`:
        every (nonce, signature) pair of the request, so that a replay dropping some of the
        signature headers still matches the original."""
        candidates = public_url_candidates(
            self.public_url,
            scheme=req.scheme,
            host=req.host,
            script_root=req.script_root,
            path=req.path,
            headers=req.headers,
            trusted_hops=self.trusted_proxies,
        )
        url = candidates[0] if candidates else req.path
        reason, replay_keys = self._verifier.check(req.headers, candidates)
        if reason != "ok":
            hint = _REFUSED_HINT[reason]
            plivo = header_value(req.headers, "X-Plivo-Signature-V3-Nonce") or header_value(
                req.headers, "X-Plivo-Signature-V2-Nonce"
            )
            if reason == "unsigned" and plivo:
                # A test or tool still signing the Plivo way (plivo's helpers), or a Plivo
                # account's callback: Vobiz's headers are named X-Vobiz-Signature-*.
                hint = (
                    ": it carries X-Plivo-Signature headers, and Vobiz signs with "
                    "X-Vobiz-Signature-* (answerkit.sign(url, token) makes them for tests)"
                )
            # loggable: the URL may hold a SCRIPT_NAME a request header chose.
            return f"{_REFUSED[reason]} for {loggable(url)}{hint}", (), url
        return None, replay_keys, url

    @property
    def needs_host(self) -> bool:
        """Whether :meth:`check` reads the request's host (only without a public URL)."""
        return not self.public_url


_REFUSED = {"unsigned": "no signature headers", "mismatch": "signature mismatch"}
_REFUSED_HINT = {
    # Spec §3.1: Vobiz signs only callback URLs with auth credentials configured on them.
    "unsigned": (
        ": if no request is ever signed, Vobiz does not sign this account's callbacks (spec "
        "§3.1) and every call is refused until it does; verify=False skips the check"
    ),
    "mismatch": (
        ": check the auth token(s) and that public_url is the URL Vobiz calls (nonces must "
        "be the 20 digits Vobiz sends)"
    ),
}
