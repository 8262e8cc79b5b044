"""The signed values handed to the buyer's browser, made with itsdangerous.

- A *status token* names one Checkout Session; it is the path of the status
  page (``/status/<token>``) and expires after ``status.token_days``. It is
  signed, not encrypted: whoever holds it can decode the session id inside,
  and can already see everything that id would show them (docs/security.md).
- A *form token* sits in the status page's "Open your control panel" form. It
  binds the POST to a page csonboard rendered for that session in the last
  :data:`FORM_MAX_AGE` seconds, and to a random nonce that the same page put
  in a ``SameSite=Strict`` cookie, so a form posted from another site (which
  carries no such cookie) is refused.

Each purpose has its own salt, so a value signed for one is never accepted as
the other. Keys come from ``CSONBOARD_SECRET_KEY`` (newest first); the newest
signs, every one verifies, which is how a key is rotated. Time comes from the
injected clock, so expiry is tested without waiting.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from itsdangerous import BadData, SignatureExpired, Signer, TimestampSigner, URLSafeTimedSerializer

FORM_MAX_AGE = 12 * 3600
"""How long a rendered page's "Open your control panel" button stays valid (s)."""

_STATUS_SALT = "csonboard.status-page.link"
_FORM_SALT = "csonboard.status-page.form"
_NONCE_SALT = "csonboard.status-page.nonce"


class _ClockSigner(TimestampSigner):
    """itsdangerous' timestamp signer on an injected clock."""

    def __init__(self, *args: Any, clock: Callable[[], datetime], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock().timestamp())


@dataclass(frozen=True)
class LinkCheck:
    """What a status token turned out to be: ``ok`` with its session id,
    ``expired`` (genuine but too old) or ``invalid`` (not ours, or altered)."""

    outcome: Literal["ok", "expired", "invalid"]
    session_id: str = ""


class Links:
    """Makes and checks status and form tokens with ``keys`` (newest first)."""

    def __init__(
        self, keys: Sequence[str], *, token_days: float, clock: Callable[[], datetime]
    ) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        # itsdangerous signs with the *last* key of the list and tries them all.
        ordered = list(reversed(keys))
        kwargs: dict[str, Any] = {"clock": clock}
        self._status = URLSafeTimedSerializer(
            ordered, salt=_STATUS_SALT, signer=_ClockSigner, signer_kwargs=kwargs
        )
        self._form = URLSafeTimedSerializer(
            ordered, salt=_FORM_SALT, signer=_ClockSigner, signer_kwargs=kwargs
        )
        self._nonce = Signer(ordered, salt=_NONCE_SALT)
        self._max_age = int(token_days * 86400)

    def status_token(self, session_id: str) -> str:
        return self._status.dumps(session_id)

    def read_status_token(self, token: str) -> LinkCheck:
        """Never raises: a bad token is a :class:`LinkCheck`, not an error."""
        try:
            session_id = self._status.loads(token, max_age=self._max_age)
        except SignatureExpired:
            return LinkCheck("expired")
        except BadData:
            return LinkCheck("invalid")
        if not isinstance(session_id, str) or not session_id:
            return LinkCheck("invalid")
        return LinkCheck("ok", session_id)

    def nonce(self, cookie: str | None) -> str:
        """The form nonce for a browser: its cookie when csonboard set it
        (signed), else a fresh one -- a cookie planted by someone else (a
        sibling subdomain can set one) is never adopted."""
        if cookie and self._nonce.validate(cookie):
            return cookie
        return self._nonce.sign(secrets.token_urlsafe(24)).decode()

    def form_token(self, session_id: str, nonce: str) -> str:
        return self._form.dumps({"s": _digest(session_id), "n": nonce})

    def check_form_token(self, token: str, session_id: str, nonce: str | None) -> bool:
        """True when ``token`` was made for this session and this nonce (the
        cookie's) within :data:`FORM_MAX_AGE`."""
        if not token or not nonce or not self._nonce.validate(nonce):
            return False
        try:
            data = self._form.loads(token, max_age=FORM_MAX_AGE)
        except BadData:
            return False
        if not isinstance(data, dict):
            return False
        # As bytes: compare_digest refuses str with non-ASCII characters, and a
        # cookie may carry anything.
        return hmac.compare_digest(
            str(data.get("s")).encode(), _digest(session_id).encode()
        ) and hmac.compare_digest(str(data.get("n")).encode(), nonce.encode("utf-8", "replace"))


def _digest(session_id: str) -> str:
    # The form carries a digest, so the page's source never shows the session id.
    return hashlib.sha256(session_id.encode()).hexdigest()[:32]
