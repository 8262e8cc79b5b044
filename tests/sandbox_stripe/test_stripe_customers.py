"""Customers and idempotency keys through the real stripe library."""

from __future__ import annotations

import pytest
import stripe

from sandbox_stripe.stripe_harness import Sandbox


def test_create_retrieve_and_list_by_email(sandbox: Sandbox) -> None:
    created = sandbox.client.v1.customers.create(
        {
            "email": "ana@example.com",
            "name": "Ana",
            "phone": "+1 555 0100",
            "address": {"line1": "1 Main St", "country": "US"},
            "metadata": {"source": "test"},
        }
    )
    sandbox.client.v1.customers.create({"email": "bob@example.com"})

    fetched = sandbox.client.v1.customers.retrieve(created.id)
    by_email = sandbox.client.v1.customers.list({"email": "ana@example.com"})

    assert created.id.startswith("cus_")
    assert fetched.email == "ana@example.com"
    assert fetched.address is not None
    assert (fetched.address.line1, fetched.address.city) == ("1 Main St", None)
    assert fetched.metadata.to_dict() == {"source": "test"}
    assert [c.id for c in by_email.data] == [created.id]


def test_metadata_update_merges_and_empty_string_deletes(sandbox: Sandbox) -> None:
    customer = sandbox.client.v1.customers.create({"metadata": {"keep": "1", "drop": "2"}})

    updated = sandbox.client.v1.customers.update(
        customer.id, {"metadata": {"drop": "", "cs_user_id": "42"}}
    )
    cleared = sandbox.client.v1.customers.update(customer.id, {"metadata": ""})

    assert updated.metadata.to_dict() == {"keep": "1", "cs_user_id": "42"}
    assert cleared.metadata.to_dict() == {}
    [cleared_event, updated_event] = sandbox.client.v1.events.list(
        {"type": "customer.updated"}
    ).data
    assert updated_event.data.previous_attributes is not None
    assert updated_event.data.previous_attributes.to_dict() == {
        "metadata": {"drop": "2", "cs_user_id": None}
    }
    assert cleared_event.data.object.metadata.to_dict() == {}


def test_an_update_that_changes_nothing_emits_no_event(sandbox: Sandbox) -> None:
    customer = sandbox.client.v1.customers.create({"name": "Same", "metadata": {"k": "v"}})

    sandbox.client.v1.customers.update(customer.id, {"name": "Same", "metadata": {"k": "v"}})

    assert sandbox.client.v1.events.list({"type": "customer.updated"}).data == []


def test_deterministic_idempotency_key_replays_the_first_result(sandbox: Sandbox) -> None:
    customer = sandbox.client.v1.customers.create({"email": "c@example.com"})
    key = f"cs-{customer.id}-link-back"
    params: dict[str, object] = {"metadata": {"cs_user_id": "42", "cs_project_id": "7"}}

    first = sandbox.client.v1.customers.update(customer.id, params, {"idempotency_key": key})
    sandbox.client.v1.customers.update(customer.id, {"metadata": {"cs_user_id": "99"}})
    replay = sandbox.client.v1.customers.update(customer.id, params, {"idempotency_key": key})

    assert replay.metadata.to_dict() == first.metadata.to_dict()  # the stored answer, not now
    assert replay.last_response is not None
    assert replay.last_response.headers["Idempotent-Replayed"] == "true"
    assert sandbox.client.v1.customers.retrieve(customer.id).metadata["cs_user_id"] == "99"
    updates = sandbox.client.v1.events.list({"type": "customer.updated"}).data
    assert len(updates) == 2  # the replay changed nothing
    assert updates[-1].request is not None
    assert updates[-1].request.idempotency_key == key


def test_same_key_with_different_parameters_is_an_idempotency_error(sandbox: Sandbox) -> None:
    customer = sandbox.client.v1.customers.create({})
    options: dict[str, str] = {"idempotency_key": "link-back-1"}
    sandbox.client.v1.customers.update(customer.id, {"metadata": {"a": "1"}}, options)

    with pytest.raises(stripe.IdempotencyError) as refused:
        sandbox.client.v1.customers.update(customer.id, {"metadata": {"a": "2"}}, options)

    assert refused.value.http_status == 400
    assert "link-back-1" in str(refused.value.user_message)


def test_a_refused_request_does_not_use_up_its_key(sandbox: Sandbox) -> None:
    options: dict[str, str] = {"idempotency_key": "create-once"}

    with pytest.raises(stripe.InvalidRequestError):
        sandbox.client.v1.customers.create({"email": "not-an-email"}, options)
    created = sandbox.client.v1.customers.create({"email": "ok@example.com"}, options)

    assert created.email == "ok@example.com"


def test_wrong_or_missing_api_key_is_a_401(sandbox: Sandbox) -> None:
    wrong = stripe.StripeClient("sk_test_wrong_key_123", base_addresses={"api": sandbox.url})

    with pytest.raises(stripe.AuthenticationError) as refused:
        wrong.v1.customers.list()
    missing = sandbox.http.get(f"{sandbox.url}/v1/customers")

    assert refused.value.http_status == 401
    assert "sk_test_wrong_key_123" not in str(refused.value.user_message)
    assert missing.status_code == 401
    assert "did not provide an API key" in missing.json()["error"]["message"]


def test_unknown_customer_is_a_404_and_unknown_path_is_stripes_404(sandbox: Sandbox) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        sandbox.client.v1.customers.update("cus_nope", {"name": "x"})
    unknown = sandbox.http.get(
        f"{sandbox.url}/v1/nothing", headers={"Authorization": "Bearer sk_test_sandbox_tests"}
    )

    assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
    assert unknown.status_code == 404
    assert "Unrecognized request URL (GET: /v1/nothing)" in unknown.json()["error"]["message"]


def test_unmodelled_customer_parameters_are_refused_not_ignored(sandbox: Sandbox) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        sandbox.client.v1.customers.create({"balance": 100})

    assert refused.value.param == "balance"
