"""Helpers for the ComputeStacks conformance tests: a fake clock, a handle on
the simulator's test controls, and a scripted transport for client-only tests.

The scripted transport is a ``requests`` adapter (the library's own seam,
``Session.mount``): it stands in for the network, not for any csonboard code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from csonboard.computestacks import (
    ComputeStacksClient,
    NewOrder,
    NewUser,
    OrderContainer,
    PlacedOrder,
    User,
)

ADMIN_USERNAME = "sandbox-admin"
ADMIN_PASSWORD = "admin-secret-Pa55+/="
T0 = 1_700_000_000.0


class FakeClock:
    """Unix time that moves only when told to."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Sim:
    """A running simulator and the ways tests talk to it besides the client."""

    url: str
    session: requests.Session

    def control(self, method: str, route: str, body: object = None) -> Any:
        """Call a ``/_sandbox/`` route and return its JSON."""
        response = self.session.request(method, f"{self.url}/_sandbox/{route}", json=body)
        assert response.ok, response.text
        return response.json()

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.control("GET", "state")
        return state

    def user_state(self, user_id: int) -> dict[str, Any]:
        return next(u for u in self.state()["users"] if u["id"] == user_id)

    def fault(self, **rule: object) -> None:
        self.control("POST", "faults", rule)

    def raw(
        self,
        method: str,
        path: str,
        *,
        auth: tuple[str, str] | None = (ADMIN_USERNAME, ADMIN_PASSWORD),
        accept: str | None = "application/json",
        **kwargs: Any,
    ) -> requests.Response:
        """An /api call made by hand, to see exactly what the simulator sends
        (``accept=None`` sends no ``Accept`` header at all)."""
        headers: dict[str, str | None] = dict(kwargs.pop("headers", {}))
        headers["Accept"] = accept
        return self.session.request(
            method, self.url + path, auth=auth, headers=headers, timeout=10, **kwargs
        )


@dataclass
class Customer:
    """A user with an API credential and a client acting as them."""

    user: User
    credential_id: int
    username: str
    password: str
    client: ComputeStacksClient


def make_customer(
    admin: ComputeStacksClient, email: str = "customer@example.com", **fields: Any
) -> Customer:
    """Create a user, mint a credential for them, return a client acting as them."""
    user = admin.create_user(NewUser(fname="Ada", lname="Lovelace", email=email, **fields))
    credential = admin.create_api_credential(user.id, "tests")
    return Customer(
        user=user,
        credential_id=credential.id,
        username=credential.username,
        password=credential.password,
        client=admin.as_user(credential.username, credential.password),
    )


WORDPRESS = OrderContainer(1000, 10, "wordpress", {"title": "Blog"})
MARIADB = OrderContainer(1010, 11, "database")


def wordpress_order(name: str = "site", location_id: int | None = 1) -> NewOrder:
    """WordPress with the MariaDB it requires, in Amsterdam."""
    return NewOrder(name, (WORDPRESS, MARIADB), location_id=location_id)


def place_wordpress(client: ComputeStacksClient, name: str = "site") -> PlacedOrder:
    """Place :func:`wordpress_order` as the client's user."""
    return client.create_order(wordpress_order(name))


# -- scripted transport ------------------------------------------------------------------


@dataclass
class Reply:
    """One scripted answer."""

    status: int = 200
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: str | None = None


@dataclass
class Sent:
    """One request the client sent."""

    method: str
    url: str
    headers: CaseInsensitiveDict[str]
    body: Any
    timeout: Any


class ScriptedAdapter(BaseAdapter):
    """Answers requests from a script of :class:`Reply` or exceptions, in order."""

    def __init__(self, *script: Reply | Exception) -> None:
        super().__init__()
        self.script: Iterator[Reply | Exception] = iter(script)
        self.sent: list[Sent] = []

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, timeout: Any = None, **_: Any
    ) -> requests.Response:
        body = json.loads(request.body) if request.body else None
        self.sent.append(
            Sent(str(request.method), str(request.url), request.headers, body, timeout)
        )
        reply = next(self.script)
        if isinstance(reply, Exception):
            raise reply
        response = requests.Response()
        response.status_code = reply.status
        response.headers = CaseInsensitiveDict(reply.headers)
        if reply.raw is not None:
            response._content = reply.raw.encode()
        elif reply.body is not None:
            response._content = json.dumps(reply.body).encode()
            response.headers.setdefault("Content-Type", "application/json")
        else:
            response._content = b""
        response.url = str(request.url)
        response.request = request
        return response

    def close(self) -> None:
        pass


SCRIPTED_URL = "http://cs.test"


Scripted = Callable[..., tuple[ComputeStacksClient, ScriptedAdapter]]
"""The ``scripted`` fixture: ``scripted(*replies, **client_options) -> (client, adapter)``."""
