"""Customers: create, retrieve, update (with Stripe's metadata rules), delete and list.

Metadata updates merge: keys sent are set, keys not sent are kept, a key sent
as ``""`` is deleted and ``metadata=""`` clears everything. An update that
changes something emits ``customer.updated`` whose ``previous_attributes``
holds only the changed fields (for metadata, only the changed keys, with null
for keys that did not exist), as Stripe does.

A deleted customer leaves a stub, ``{"id", "object": "customer", "deleted": true}``:
retrieving it answers the stub (200), while updating or deleting it again, or
naming it anywhere else (a session's or subscription's ``customer``), is Stripe's
``resource_missing`` "No such customer", and lists leave it out.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from csonboard.sandbox.stripe import lifecycle, shapes
from csonboard.sandbox.stripe.errors import invalid, no_such, unsupported
from csonboard.sandbox.stripe.events import EventLog, Origin
from csonboard.sandbox.stripe.forms import (
    Params,
    as_dict,
    as_metadata,
    as_opt_str,
    as_str,
    as_str_list,
    check_known,
    merge_metadata,
)
from csonboard.sandbox.stripe.listing import PAGE_PARAMS, paginate, range_filter
from csonboard.sandbox.stripe.state import Json, Store

_MODELLED = {
    "address",
    "description",
    "email",
    "expand",
    "metadata",
    "name",
    "phone",
    "preferred_locales",
}
# Real Customer parameters whose effects (balances, payment methods, tax) are not modelled.
_UNSUPPORTED = {
    "balance",
    "business_name",
    "cash_balance",
    "default_source",
    "individual_name",
    "invoice_prefix",
    "invoice_settings",
    "next_invoice_sequence",
    "payment_method",
    "shipping",
    "source",
    "tax",
    "tax_exempt",
    "tax_id_data",
    "test_clock",
    "validate",
}
_TEXT_FIELDS = ("email", "name", "phone", "description")


def create_customer(store: Store, events: EventLog, params: Params, origin: Origin) -> Json:
    """``POST /v1/customers``; emits ``customer.created``."""
    _check_params(params)
    with store.lock:
        customer = shapes.customer(
            store,
            email=_read_email(params),
            name=as_opt_str(params, "name"),
            phone=as_opt_str(params, "phone"),
            address_fields=_read_address(params),
            description=as_opt_str(params, "description"),
            metadata={k: v for k, v in as_metadata(params.get("metadata", {})).items() if v},
            preferred_locales=_read_locales(params),
        )
        store.put(customer)
        events.emit("customer.created", customer, origin=origin)
        return customer


def update_customer(
    store: Store, events: EventLog, customer_id: str, params: Params, origin: Origin
) -> Json:
    """``POST /v1/customers/{id}``; emits ``customer.updated`` when anything changed.

    Everything is validated before anything changes, so a refused update leaves
    the customer as it was.
    """
    _check_params(params)
    updates: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        if name in params:
            updates[name] = _read_email(params) if name == "email" else as_opt_str(params, name)
    if "address" in params:
        updates["address"] = shapes.address(_read_address(params))
    if "preferred_locales" in params:
        updates["preferred_locales"] = _read_locales(params)
    with store.lock:
        customer = store.get("customer", customer_id)
        previous: dict[str, Any] = {}
        if "metadata" in params:
            merged, old = merge_metadata(customer["metadata"], params["metadata"])
            if old:
                previous["metadata"] = old
                updates["metadata"] = merged
        for name, value in updates.items():
            if customer[name] != value:
                previous.setdefault(name, copy.deepcopy(customer[name]))
                customer[name] = value
        if previous:
            events.emit("customer.updated", customer, previous=previous, origin=origin)
        return customer


def retrieve_customer(store: Store, customer_id: str, params: Params) -> Json:
    """``GET /v1/customers/{id}``: the customer, or the stub of a deleted one."""
    check_known(params, ("expand",))
    with store.lock:
        found = store.objects["customer"].get(customer_id)
        if found is None:
            raise no_such("customer", customer_id)
        return found


def delete_customer(
    store: Store, events: EventLog, customer_id: str, params: Params, origin: Origin
) -> Json:
    """``DELETE /v1/customers/{id}``: answers the deleted stub.

    Cancels the customer's subscriptions that have not ended at once, as Stripe
    does (``customer.subscription.deleted`` for each, reason
    ``cancellation_requested``), then emits ``customer.deleted`` with the customer
    as it was. The endpoint takes no parameters.
    """
    check_known(params, ())
    with store.lock:
        customer = store.get("customer", customer_id)
        for subscription in list(store.objects["subscription"].values()):
            if subscription["customer"] == customer_id and (
                subscription["status"] not in lifecycle.ENDED
            ):
                lifecycle.cancel(
                    store, events, subscription, reason="cancellation_requested", origin=origin
                )
        events.emit("customer.deleted", customer, origin=origin)
        return store.delete(customer)


def list_customers(store: Store, params: Mapping[str, Any]) -> Json:
    """``GET /v1/customers``: newest first, deleted ones left out; ``email`` (exact,
    case-sensitive) and ``created``."""
    check_known(params, (*PAGE_PARAMS, "email", "created", "test_clock"))
    email = as_str(params["email"], "email") if "email" in params else None
    created = range_filter(params["created"], "created") if "created" in params else None
    with store.lock:
        return copy.deepcopy(
            paginate(
                store.newest_first("customer"),
                params,
                url="/v1/customers",
                label="customer",
                keep=lambda c: (
                    (email is None or c["email"] == email)
                    and (created is None or created(c["created"]))
                ),
            )
        )


def _check_params(params: Params) -> None:
    for name in params:
        if name in _UNSUPPORTED:
            raise unsupported(name)
    check_known(params, _MODELLED)


def _read_email(params: Params) -> str | None:
    email = as_opt_str(params, "email")
    if email is not None and "@" not in email:
        raise invalid(f"Invalid email address: {email}", "email", code="email_invalid")
    return email


def _read_address(params: Params) -> dict[str, Any] | None:
    if params.get("address", "") == "":
        return None
    fields = as_dict(params["address"], "address")
    check_known(fields, shapes.ADDRESS_FIELDS, "address")
    return {name: as_opt_str(fields, name, "address") for name in fields}


def _read_locales(params: Params) -> list[str]:
    if params.get("preferred_locales", "") == "":
        return []
    return as_str_list(params["preferred_locales"], "preferred_locales")
