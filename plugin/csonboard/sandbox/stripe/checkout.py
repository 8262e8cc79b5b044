"""Creating Checkout Sessions: validating parameters like Stripe and building the object.

Creating a session emits no event on Stripe, and none here. What the buyer does
afterwards (pay, fail, let it expire) is in ``purchase``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from csonboard.sandbox.stripe import shapes
from csonboard.sandbox.stripe.errors import invalid, missing, unsupported
from csonboard.sandbox.stripe.forms import (
    Params,
    as_dict,
    as_enum,
    as_int,
    as_list,
    as_metadata,
    as_opt_str,
    as_str,
    check_known,
    require,
    sub,
)
from csonboard.sandbox.stripe.meters import is_metered, refuse_metered
from csonboard.sandbox.stripe.state import Json, Store

DEFAULT_LIFETIME = 24 * 3600
MAX_LINE_ITEMS = 100
MAX_SUBSCRIPTION_ITEMS = 20  # per kind (recurring / one-time), as Stripe limits them

_MODELLED = {
    "cancel_url",
    "client_reference_id",
    "currency",
    "customer",
    "customer_creation",
    "customer_email",
    "expand",
    "expires_at",
    "line_items",
    "locale",
    "metadata",
    "mode",
    "payment_intent_data",
    "payment_method_types",
    "redirect_on_completion",
    "return_url",
    "subscription_data",
    "success_url",
    "ui_mode",
}
# Real parameters that only change the hosted page's look or what it collects;
# accepted so callers may send them, without effect on the objects made here.
_ACCEPTED_UNMODELLED = {
    "allow_promotion_codes",
    "automatic_tax",
    "billing_address_collection",
    "branding_settings",
    "consent_collection",
    "custom_text",
    "customer_update",
    "payment_method_collection",
    "payment_method_configuration",
    "payment_method_options",
    "phone_number_collection",
    "saved_payment_method_options",
    "submit_type",
    "tax_id_collection",
    "wallet_options",
}
# Real parameters whose effect (discounts, trials, extra invoices...) is not modelled.
_UNSUPPORTED = {
    "adaptive_pricing",
    "after_expiration",
    "custom_fields",
    "discounts",
    "invoice_creation",
    "optional_items",
    "payment_method_data",
    "setup_intent_data",
    "shipping_address_collection",
    "shipping_options",
}
_LINE_ITEM_PARAMS = {"price", "quantity", "adjustable_quantity", "dynamic_tax_rates", "tax_rates"}
UI_MODES = ("elements", "embedded_page", "form", "hosted_page")
_ON_PAGE = ("embedded_page", "elements")
"""UI modes where the buyer pays on the merchant's own page: no hosted ``url``, a
``client_secret`` for Stripe.js, and ``return_url`` instead of success/cancel URLs."""


def create_session(store: Store, params: Params, *, pay_url_base: str) -> Json:
    """``POST /v1/checkout/sessions``: validate like Stripe, store and return the session.

    ``pay_url_base`` is where the sandbox serves its stand-in payment page; the
    session's ``url`` points there. Raises :class:`ApiError` (400) naming the
    first offending parameter.
    """
    for name in params:
        if name in _UNSUPPORTED:
            raise unsupported(name)
    check_known(params, _MODELLED | _ACCEPTED_UNMODELLED)
    mode = as_enum(require(params, "mode"), "mode", ("payment", "setup", "subscription"))
    with store.lock:
        # Everything is read and validated before anything is stored.
        items = _read_line_items(store, params, mode)
        customer_id = _read_customer(store, params, mode)
        fields = _read_session_fields(params, mode, customer_id)
        hidden = _read_hidden_options(params, mode)
        now = store.now()
        expires_at = _read_expires_at(params, now)
        session_id = store.new_object_id("checkout.session")
        on_page = fields["ui_mode"] in _ON_PAGE
        session = shapes.checkout_session(
            session_id=session_id,
            mode=mode,
            created=now,
            expires_at=expires_at,
            currency=items[0][0]["currency"] if items else as_opt_str(params, "currency"),
            subtotal=sum(int(p["unit_amount"]) * q for p, q in items) if items else None,
            customer_id=customer_id,
            url=None if on_page else f"{pay_url_base}/{session_id}",
            client_secret=f"{session_id}_secret_{store.token()}" if on_page else None,
            **fields,
        )
        store.put(session)
        store.line_items[session_id] = [
            shapes.line_item(
                store,
                price_obj=p,
                quantity=q,
                description=store.objects["product"].get(p["product"], {}).get("name", ""),
            )
            for p, q in items
        ]
        store.hidden[session_id] = hidden
        return session


def _read_session_fields(params: Params, mode: str, customer_id: str | None) -> dict[str, Any]:
    """The session fields taken straight from parameters, validated."""
    creation = None
    if mode != "subscription" and customer_id is None:
        creation = as_enum(
            params.get("customer_creation", "if_required"),
            "customer_creation",
            ("always", "if_required"),
        )
    reference = as_opt_str(params, "client_reference_id")
    if reference is not None and len(reference) > 200:
        raise invalid("client_reference_id must be at most 200 characters", "client_reference_id")
    ui_mode = as_enum(params.get("ui_mode", "hosted_page"), "ui_mode", UI_MODES)
    return {
        **_read_return(params, ui_mode),
        "ui_mode": ui_mode,
        "cancel_url": _read_url(params, "cancel_url"),
        "client_reference_id": reference,
        "customer_creation": creation,
        "customer_email": _read_email(params),
        "locale": as_opt_str(params, "locale"),
        "metadata": {k: v for k, v in as_metadata(params.get("metadata", {})).items() if v},
        "payment_method_types": _read_method_types(params),
        "success_url": _read_url(params, "success_url"),
    }


def _read_return(params: Params, ui_mode: str) -> dict[str, Any]:
    """Where the buyer goes afterwards, by UI mode: ``success_url``/``cancel_url``
    for Stripe's pages, ``return_url`` (and, embedded, ``redirect_on_completion``)
    for the merchant's own page, refused the other way round as Stripe refuses them."""
    if ui_mode in _ON_PAGE:
        for name in ("success_url", "cancel_url"):
            if name in params:
                raise invalid(f"`{name}` is not allowed when `ui_mode` is `{ui_mode}`.", name)
    elif "return_url" in params:
        raise invalid(
            "`return_url` can only be used when `ui_mode` is `embedded_page` or `elements`.",
            "return_url",
        )
    redirect = None
    if "redirect_on_completion" in params:
        if ui_mode != "embedded_page":
            raise invalid(
                "`redirect_on_completion` can only be used when `ui_mode` is `embedded_page`.",
                "redirect_on_completion",
            )
        choices = ("always", "if_required", "never")
        redirect = as_enum(params["redirect_on_completion"], "redirect_on_completion", choices)
    elif ui_mode == "embedded_page":
        redirect = "always"
    return_url = _read_url(params, "return_url")
    if ui_mode in _ON_PAGE and return_url is None and redirect != "never":
        raise missing("return_url")
    return {"return_url": return_url, "redirect_on_completion": redirect}


def _read_line_items(store: Store, params: Params, mode: str) -> list[tuple[Json, int]]:
    """The (price, quantity) pairs, checked against the mode like Stripe checks them."""
    if mode == "setup":
        if "line_items" in params:
            raise invalid("You can not pass `line_items` in `setup` mode.", "line_items")
        return []
    if "line_items" not in params:
        raise missing("line_items")
    raw = as_list(params["line_items"], "line_items")
    if not raw:
        raise missing("line_items")
    if len(raw) > MAX_LINE_ITEMS:
        raise invalid(f"You may only specify up to {MAX_LINE_ITEMS} line items.", "line_items")
    items = [
        _read_line_item(store, raw_item, sub("line_items", i)) for i, raw_item in enumerate(raw)
    ]
    for index, (price, _) in enumerate(items):
        param = sub(sub("line_items", index), "price")
        if price["currency"] != items[0][0]["currency"]:
            raise invalid(
                f"The price {price['id']} has currency {price['currency']!r} but the first line "
                f"item's price has {items[0][0]['currency']!r}; all line items must share one "
                "currency.",
                param,
            )
        if mode == "payment" and price["recurring"] is not None:
            raise invalid(
                "You specified `payment` mode but passed a recurring price. Either switch to "
                "`subscription` mode or use only one-time prices.",
                param,
            )
    if mode == "subscription":
        _check_subscription_items([p for p, _ in items])
    return items


def _read_line_item(store: Store, raw: Any, param: str) -> tuple[Json, int]:
    item = as_dict(raw, param)
    if "price_data" in item:
        raise unsupported(sub(param, "price_data"))
    check_known(item, _LINE_ITEM_PARAMS, param)
    price_id = as_str(require(item, "price", param), sub(param, "price"))
    price = store.get("price", price_id, param=sub(param, "price"), status=400)
    if not price["active"]:
        raise invalid(
            "The price specified is inactive. This field only accepts active prices.",
            sub(param, "price"),
        )
    if is_metered(price) and "quantity" in item:
        raise invalid(
            "Quantity should not be specified where usage_type is `metered`. Remove quantity "
            f"from `{param}`",
            sub(param, "quantity"),
        )
    refuse_metered(price, sub(param, "price"))
    quantity = as_int(require(item, "quantity", param), sub(param, "quantity"), minimum=1)
    return price, quantity


def _check_subscription_items(prices: list[Json]) -> None:
    recurring = [p for p in prices if p["recurring"] is not None]
    if not recurring:
        raise invalid(
            "You must provide at least one recurring price in `subscription` mode when using "
            "prices.",
            "line_items",
        )
    if len(recurring) > MAX_SUBSCRIPTION_ITEMS or len(prices) - len(recurring) > 20:
        raise invalid(
            f"Subscription mode allows at most {MAX_SUBSCRIPTION_ITEMS} recurring and "
            f"{MAX_SUBSCRIPTION_ITEMS} one-time line items.",
            "line_items",
        )
    periods = {(p["recurring"]["interval"], p["recurring"]["interval_count"]) for p in recurring}
    if len(periods) > 1:
        raise invalid(
            "Checkout does not support recurring prices with different billing intervals in "
            "one subscription.",
            "line_items",
        )


def _read_customer(store: Store, params: Params, mode: str) -> str | None:
    for other in ("customer_email", "customer_creation"):
        if params.get("customer") and params.get(other):
            raise invalid(
                f"You may only specify one of these parameters: customer, {other}.", other
            )
    if mode == "subscription" and "customer_creation" in params:
        raise invalid(
            "`customer_creation` can only be used in `payment` and `setup` mode.",
            "customer_creation",
        )
    customer_id = as_opt_str(params, "customer")
    if customer_id is not None:
        store.get("customer", customer_id, param="customer", status=400)
    return customer_id


def _read_email(params: Params) -> str | None:
    email = as_opt_str(params, "customer_email")
    if email is not None and "@" not in email:
        raise invalid(f"Invalid email address: {email}", "customer_email")
    return email


def _read_url(params: Params, name: str) -> str | None:
    url = as_opt_str(params, name)
    if url is not None and not url.startswith(("http://", "https://")):
        raise invalid("Not a valid URL", name, code="url_invalid")
    return url


def _read_expires_at(params: Params, now: int) -> int:
    if "expires_at" not in params:
        return now + DEFAULT_LIFETIME
    expires_at = as_int(params["expires_at"], "expires_at")
    if not now + 1800 <= expires_at <= now + DEFAULT_LIFETIME:
        raise invalid(
            "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout "
            "Session creation.",
            "expires_at",
        )
    return expires_at


def _read_method_types(params: Params) -> list[str]:
    if "payment_method_types" not in params:
        return ["card"]
    raw = as_list(params["payment_method_types"], "payment_method_types")
    return [as_str(v, sub("payment_method_types", i)) for i, v in enumerate(raw)]


def _read_hidden_options(params: Mapping[str, Any], mode: str) -> Json:
    """``subscription_data`` / ``payment_intent_data``: copied onto objects made later."""
    options: Json = {}
    for name, allowed_mode in (
        ("subscription_data", "subscription"),
        ("payment_intent_data", "payment"),
    ):
        if name not in params:
            continue
        if mode != allowed_mode:
            raise invalid(f"`{name}` can only be used in `{allowed_mode}` mode.", name)
        data = as_dict(params[name], name)
        for key in data:
            if key not in ("metadata", "description"):
                raise unsupported(sub(name, key))
        options[name] = {
            "metadata": {
                k: v
                for k, v in as_metadata(data.get("metadata", {}), sub(name, "metadata")).items()
                if v
            },
            "description": as_opt_str(data, "description", name),
        }
    return options
