"""Stripe as csonboard sees it: the gateway (the calls), the records it returns,
and how a failed call becomes one of csonboard's errors."""

from csonboard.stripe_api.gateway import StripeGateway
from csonboard.stripe_api.records import (
    Address,
    Buyer,
    CheckoutSession,
    LineItem,
    PriceSummary,
    ProductSummary,
    SessionSummary,
    Subscription,
    SubscriptionItem,
)

__all__ = [
    "Address",
    "Buyer",
    "CheckoutSession",
    "LineItem",
    "PriceSummary",
    "ProductSummary",
    "SessionSummary",
    "StripeGateway",
    "Subscription",
    "SubscriptionItem",
]
