"""``POST /v1/products`` through the real stripe library, and the ``doc_url`` Stripe's
error envelope carries for documented error codes."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from sandbox_stripe.stripe_harness import Sandbox


def test_create_keeps_the_modelled_fields_and_emits_product_created(sandbox: Sandbox) -> None:
    product = sandbox.client.v1.products.create(
        {
            "name": "Nightly Backups",
            "description": "Off-site copies",
            "metadata": {"plan": "backups", "dropped": ""},
            "active": False,
        }
    )

    fetched = sandbox.client.v1.products.retrieve(product.id)
    listed = sandbox.client.v1.products.list({"ids": [product.id]})
    [event] = sandbox.client.v1.events.list({"type": "product.created"}).data

    assert product.id.startswith("prod_")
    assert (fetched.name, fetched.description, fetched.active) == (
        "Nightly Backups",
        "Off-site copies",
        False,
    )
    assert fetched.type == "service"
    assert fetched.default_price is None
    assert fetched.metadata.to_dict() == {"plan": "backups"}
    assert [p.id for p in listed.data] == [product.id]
    assert event.data.object.id == product.id
    assert event.request is not None
    assert product.last_response is not None
    assert event.request.id == product.last_response.request_id


def test_a_chosen_id_is_kept_and_must_not_be_taken(sandbox: Sandbox) -> None:
    product = sandbox.client.v1.products.create({"id": "prod_backups", "name": "Backups"})

    with pytest.raises(stripe.InvalidRequestError) as taken:
        sandbox.client.v1.products.create({"id": "prod_backups", "name": "Backups again"})

    assert product.id == "prod_backups"
    assert taken.value.http_status == 400
    assert (taken.value.code, taken.value.param) == ("resource_already_exists", "id")
    assert sandbox.client.v1.products.retrieve("prod_backups").name == "Backups"
    assert len(sandbox.client.v1.events.list({"type": "product.created"}).data) == 1


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({}, "name", "parameter_missing"),
        ({"name": ""}, "name", "parameter_missing"),
        ({"name": "X", "description": ""}, "description", "parameter_invalid_empty"),
        ({"name": "X", "id": ""}, "id", "parameter_invalid_empty"),
        ({"name": "X", "active": "yes"}, "active", "parameter_invalid"),
        (
            {"name": "X", "default_price_data": {"currency": "usd", "unit_amount": 100}},
            "default_price_data",
            "parameter_unsupported",
        ),
        ({"name": "X", "images": ["https://example.com/a.png"]}, "images", "parameter_unsupported"),
        ({"name": "X", "type": "good"}, "type", "parameter_unsupported"),
        ({"name": "X", "colour": "red"}, "colour", "parameter_unknown"),
    ],
)
def test_bad_product_parameters_are_refused(
    sandbox: Sandbox, params: dict[str, Any], param: str, code: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as refused:
        sandbox.client.v1.products.create(params)

    assert refused.value.http_status == 400
    assert (refused.value.param, refused.value.code) == (param, code)
    assert sandbox.client.v1.events.list({"type": "product.created"}).data == []


def test_errors_link_stripes_page_for_documented_codes_only(sandbox: Sandbox) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing_name:
        sandbox.client.v1.products.create({})
    with pytest.raises(stripe.InvalidRequestError) as missing_product:
        sandbox.client.v1.products.retrieve("prod_nope")
    with pytest.raises(stripe.InvalidRequestError) as unmodelled:
        sandbox.client.v1.products.create({"name": "X", "url": "https://example.com"})

    assert missing_name.value.error is not None
    assert missing_name.value.error.doc_url == (
        "https://stripe.com/docs/error-codes/parameter-missing"
    )
    assert missing_product.value.error is not None
    assert missing_product.value.error.doc_url == (
        "https://stripe.com/docs/error-codes/resource-missing"
    )
    # The stand-in's own code has no page at Stripe: no link that would lead nowhere.
    assert unmodelled.value.code == "parameter_unsupported"
    assert unmodelled.value.json_body is not None
    assert "doc_url" not in unmodelled.value.json_body["error"]
    for refused in (missing_name, missing_product, unmodelled):
        assert refused.value.json_body is not None
        assert "request_log_url" not in refused.value.json_body["error"]
