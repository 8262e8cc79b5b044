"""A ``cs.url`` that leads somewhere other than the ComputeStacks API: a
ConfigError naming ``cs.url``, not an outage and not "record not found".

Real HTTP only: a tiny web server answering the way web servers do (a
plain-text 404, an nginx welcome page, a Rails HTML 404, a 502 page, a
redirect to https), and the simulator behind a wrong path prefix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import requests
from click.testing import CliRunner
from flask import Flask, Response, request
from prometheus_client import REGISTRY

from computestacks.cs_support import ADMIN_PASSWORD, ADMIN_USERNAME, Sim
from csonboard.cli import main
from csonboard.computestacks import ComputeStacksClient, NewUser
from csonboard.errors import (
    ComputeStacksNotFound,
    ComputeStacksUnavailable,
    ConfigError,
    PermanentError,
)
from csonboard.sandbox.catalog import example_plans
from csonboard.sandbox.server import start_in_thread

USERNAME = "cs-admin-Zq81"
PASSWORD = "pw-Zq81-secret"

GO_NOT_FOUND = "404 page not found\n"
NGINX_WELCOME = (
    "<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head>"
    "<body><h1>Welcome to nginx!</h1></body></html>"
)
RAILS_NOT_FOUND = (
    "<!DOCTYPE html><html><body><h1>The page you were looking for doesn't exist.</h1></body></html>"
)
BAD_GATEWAY = (
    "<html><head><title>502 Bad Gateway</title></head><body>"
    "<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)
MOVED = "<html><head><title>301 Moved Permanently</title></head></html>"
BODIES = (GO_NOT_FOUND, NGINX_WELCOME, RAILS_NOT_FOUND, BAD_GATEWAY, MOVED)


@dataclass
class WebServer:
    """A plain web server; the first path segment picks how it answers."""

    url: str
    seen: list[str] = field(default_factory=list)
    """The path of every request received, in order."""


def _plain_web_server(seen: list[str]) -> Flask:
    app = Flask(__name__)

    @app.route(
        "/<path:path>", methods=["GET", "POST", "PATCH", "PUT", "DELETE"], strict_slashes=False
    )
    def answer(path: str) -> Response:
        seen.append(request.path)
        kind = path.split("/", 1)[0]
        if kind == "welcome":
            return Response(NGINX_WELCOME, status=200, content_type="text/html")
        if kind == "rails":
            return Response(RAILS_NOT_FOUND, status=404, content_type="text/html; charset=utf-8")
        if kind == "gateway":
            return Response(BAD_GATEWAY, status=502, content_type="text/html")
        if kind == "http":
            moved = Response(MOVED, status=301, content_type="text/html")
            moved.headers["Location"] = "https://moved.example.net" + request.path
            return moved
        return Response(GO_NOT_FOUND, status=404, content_type="text/plain; charset=utf-8")

    return app


@pytest.fixture(scope="module")
def web_server() -> Iterator[WebServer]:
    seen: list[str] = []
    server = start_in_thread(_plain_web_server(seen))
    yield WebServer(server.url, seen)
    server.stop()


@pytest.fixture
def web(web_server: WebServer) -> WebServer:
    """The web server, with no request seen yet."""
    web_server.seen.clear()
    return web_server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def client_at(
    url: str,
    session: requests.Session,
    sleeps: list[float] | None = None,
    *,
    attempts: int = 3,
    credential: tuple[str, str] = (USERNAME, PASSWORD),
) -> ComputeStacksClient:
    """A client with retries on (they must not be used for a wrong address)."""
    return ComputeStacksClient(
        url,
        session,
        username=credential[0],
        password=credential[1],
        attempts=attempts,
        sleep=(sleeps if sleeps is not None else []).append,
        jitter=lambda: 0.0,
    )


def assert_names_cs_url(error: ConfigError, call: str, got: str, address: str) -> None:
    """One line naming the key, the call, what came back and the address, and
    nothing the server or the credential could have put there."""
    message = str(error)
    assert error.key == "cs.url"
    assert message.startswith(f"cs.url: {call} ")
    assert got in message
    assert address in message
    assert "CSONBOARD_CS_URL" in message
    assert "\n" not in message
    credentials = (USERNAME, PASSWORD, ADMIN_USERNAME, ADMIN_PASSWORD)
    for leaked in (*credentials, "Authorization", "Basic", *BODIES, "nginx", "doesn't"):
        assert leaked not in message


def errors_counted(endpoint: str, error: str) -> float:
    """``csonboard_computestacks_errors_total`` for this endpoint and kind."""
    value = REGISTRY.get_sample_value(
        "csonboard_computestacks_errors_total", {"endpoint": endpoint, "error": error}
    )
    return value or 0.0


# -- a plain web server at cs.url ------------------------------------------------------


def test_a_plain_text_404_is_a_config_error_not_a_missing_record(
    web: WebServer, http: requests.Session
) -> None:
    client = client_at(web.url + "/plain", http)
    with pytest.raises(ConfigError) as caught:
        client.get_user(7)
    assert_names_cs_url(
        caught.value, "GET /api/admin/users/7", "HTTP 404 text/plain, not JSON", web.url + "/plain"
    )
    assert isinstance(caught.value, PermanentError)
    assert web.seen == ["/plain/api/admin/users/7"]  # not retried


def test_a_lookup_is_not_answered_none_by_a_web_servers_404(
    web: WebServer, http: requests.Session
) -> None:
    """The onboarding looks the customer up before creating them: "no such user"
    here would make it go on and fail later with a misleading error."""
    client = client_at(web.url + "/plain", http)
    with pytest.raises(ConfigError, match=r"^cs\.url: GET /api/admin/users/cus_Zq81 "):
        client.find_user_by_external_id("cus_Zq81")
    with pytest.raises(ConfigError, match="HTTP 404 text/plain"):
        client.find_user_by_email("ada@example.com")


def test_an_html_404_page_is_a_config_error(web: WebServer, http: requests.Session) -> None:
    client = client_at(web.url + "/rails", http)
    with pytest.raises(ConfigError) as caught:
        client.get_order("6f1c")
    assert_names_cs_url(
        caught.value, "GET /api/orders/6f1c", "HTTP 404 text/html, not JSON", web.url + "/rails"
    )
    assert "path does not exist" in str(caught.value)


def test_a_welcome_page_with_200_is_a_config_error_not_a_protocol_error(
    web: WebServer, http: requests.Session
) -> None:
    client = client_at(web.url + "/welcome", http)
    with pytest.raises(ConfigError) as caught:
        client.list_products()
    assert_names_cs_url(
        caught.value, "GET /api/products", "HTTP 200 text/html, not JSON", web.url + "/welcome"
    )
    assert "not the ComputeStacks API" in str(caught.value)


def test_a_call_that_reads_no_body_does_not_pass_on_a_welcome_page(
    web: WebServer, http: requests.Session
) -> None:
    """Suspending answers with nothing to read; a 200 page must not count as done."""
    client = client_at(web.url + "/welcome", http)
    with pytest.raises(ConfigError, match=r"^cs\.url: POST /api/admin/users/7/suspension "):
        client.suspend_user(7)
    with pytest.raises(ConfigError, match=r"^cs\.url: DELETE /api/admin/users/7 "):
        client.delete_user(7)


def test_a_create_is_sent_once_and_refused_as_config(
    web: WebServer, http: requests.Session
) -> None:
    client = client_at(web.url + "/plain", http)
    with pytest.raises(ConfigError, match=r"^cs\.url: POST /api/admin/users "):
        client.create_user(NewUser(fname="A", lname="B", email="a@example.com"))
    assert web.seen == ["/plain/api/admin/users"]


def test_a_redirect_is_a_config_error(web: WebServer, http: requests.Session) -> None:
    client = client_at(web.url + "/http", http)
    with pytest.raises(ConfigError) as caught:
        client.get_user(7)
    assert_names_cs_url(caught.value, "GET /api/admin/users/7", "HTTP 301", web.url + "/http")
    assert "redirected" in str(caught.value)
    assert "moved.example.net" not in str(caught.value)  # Location is a header


def test_a_non_json_502_stays_an_outage_and_hints_at_a_proxy(
    web: WebServer, http: requests.Session
) -> None:
    sleeps: list[float] = []
    client = client_at(web.url + "/gateway", http, sleeps, attempts=2)
    with pytest.raises(ComputeStacksUnavailable) as caught:
        client.get_user(7)
    assert caught.value.status == 502
    assert "HTTP 502 text/html, not JSON" in str(caught.value)
    assert "proxy" in str(caught.value)
    for leaked in (*BODIES, USERNAME, PASSWORD):
        assert leaked not in str(caught.value)
    assert len(web.seen) == 2  # retried, as outages are
    assert sleeps == [0.5]


def test_the_address_is_shown_without_user_info_query_or_fragment(
    web: WebServer, http: requests.Session
) -> None:
    host = web.url.removeprefix("http://")
    client = client_at(f"http://url-user:url-Pa55@{host}/plain?token=tok-Zq81#frag", http)
    with pytest.raises(ConfigError) as caught:
        client.get_user(7)
    message = str(caught.value)
    assert f"from {web.url}/plain:" in message
    for leaked in ("url-user", "url-Pa55", "tok-Zq81", "frag"):
        assert leaked not in message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("cloud.example.com", "MissingSchema"),
        ("admin:pw-Zq81@cloud.example.com", "InvalidSchema"),
        ("ftp://cloud.example.com", "InvalidSchema"),
    ],
)
def test_a_url_requests_cannot_use_is_a_config_error(
    http: requests.Session, url: str, problem: str
) -> None:
    client = client_at(url, http)
    with pytest.raises(ConfigError) as caught:
        client.get_user(7)
    message = str(caught.value)
    assert message.startswith("cs.url: GET /api/admin/users/7: ")
    assert f"cloud.example.com is not a usable URL ({problem})" in message
    assert "CSONBOARD_CS_URL" in message
    assert "pw-Zq81" not in message


def test_config_errors_are_counted_with_their_own_label(
    web: WebServer, http: requests.Session
) -> None:
    endpoint = "GET /api/admin/users/{id}"
    before = errors_counted(endpoint, "config"), errors_counted(endpoint, "not_found")
    with pytest.raises(ConfigError):
        client_at(web.url + "/plain", http).get_user(7)
    after = errors_counted(endpoint, "config"), errors_counted(endpoint, "not_found")
    assert (after[0] - before[0], after[1] - before[1]) == (1.0, 0.0)


# -- the simulator behind a wrong path prefix ---------------------------------------


def test_a_wrong_path_prefix_before_the_simulator_names_cs_url(sim: Sim) -> None:
    """The same lookup, the same simulator: at its address a missing user is the
    controller's empty 404 (ComputeStacksNotFound, answered as None); one path
    segment off, the web app's HTML 404 is a ConfigError."""
    admin = (ADMIN_USERNAME, ADMIN_PASSWORD)
    right = client_at(sim.url, sim.session, credential=admin)
    endpoint = "GET /api/admin/users/{id}"
    find = {"find_by_external_id": "true"}
    missing = sim.raw("GET", "/api/admin/users/cus_missing", params=find)
    assert (missing.status_code, missing.content) == (404, b"")
    before = errors_counted(endpoint, "not_found")
    assert right.find_user_by_external_id("cus_missing") is None
    assert errors_counted(endpoint, "not_found") - before == 1.0
    with pytest.raises(ComputeStacksNotFound):
        right.get_user(999)

    wrong = client_at(sim.url + "/computestacks", sim.session, credential=admin)
    with pytest.raises(ConfigError) as caught:
        wrong.find_user_by_external_id("cus_missing")
    assert_names_cs_url(
        caught.value,
        "GET /api/admin/users/cus_missing",
        "HTTP 404 text/html, not JSON",
        sim.url + "/computestacks",
    )
    with pytest.raises(ConfigError, match=r"^cs\.url: GET /api/locations "):
        wrong.list_locations()


def test_an_address_ending_in_api_names_cs_url_not_a_missing_record(sim: Sim) -> None:
    """``https://cloud.example.com/api`` makes every call ``/api/api/...``: the
    controller's own JSON "Unknown API Call" 404, which must not read as "no such
    user" (csonboard would then try to create one)."""
    wrong = client_at(sim.url + "/api", sim.session, credential=(ADMIN_USERNAME, ADMIN_PASSWORD))
    with pytest.raises(ConfigError) as caught:
        wrong.find_user_by_external_id("cus_missing")
    assert caught.value.key == "cs.url"
    assert "Unknown API Call" in str(caught.value)
    assert "path too many" in str(caught.value)


def test_a_simulated_502_page_is_unavailable_with_the_proxy_hint(sim: Sim) -> None:
    sim.fault(method="GET", path="/api/products", status=502)
    credential = (ADMIN_USERNAME, ADMIN_PASSWORD)
    admin = client_at(sim.url, sim.session, attempts=1, credential=credential)
    with pytest.raises(ComputeStacksUnavailable, match=r"HTTP 502 text/html, not JSON.*proxy"):
        admin.list_products()
    assert admin.list_products()


# -- csonboard plans check ----------------------------------------------------------


def test_plans_check_against_a_web_server_exits_2_with_one_line(web: WebServer) -> None:
    env: dict[str, str | None] = {
        "CSONBOARD_CS_URL": web.url + "/plain",
        "CSONBOARD_CS_ADMIN_USERNAME": USERNAME,
        "CSONBOARD_CS_ADMIN_PASSWORD": PASSWORD,
        "CSONBOARD_PLANS": str(example_plans()),
        "CSONBOARD_STRIPE_API_KEY": None,
        "CSONBOARD_CONFIG": None,
    }
    result = CliRunner().invoke(main, ["plans", "check"], env=env)

    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("csonboard: configuration error: cs.url: GET /api/locations ")
    assert "HTTP 404 text/plain, not JSON" in line
    assert "CSONBOARD_CS_URL" in line
    assert result.stdout == ""
    for leaked in (USERNAME, PASSWORD, GO_NOT_FOUND.strip(), "Traceback"):
        assert leaked not in result.output
