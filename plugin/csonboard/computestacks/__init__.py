"""Typed client for the ComputeStacks controller API (as its source defines it).

Never imports Flask. Takes an injected ``requests.Session``; returns the frozen
dataclasses of :mod:`.models`; raises only the ComputeStacks errors of
:mod:`csonboard.errors`.
"""

from csonboard.computestacks.client import ComputeStacksClient
from csonboard.computestacks.models import (
    POWER_ACTIONS,
    AdminProduct,
    ApiCredential,
    BillingUsage,
    Container,
    ContainerImage,
    ImageVariant,
    Listing,
    Location,
    NewOrder,
    NewUser,
    Order,
    OrderContainer,
    OrderStatus,
    PlacedOrder,
    Product,
    Project,
    Region,
    Service,
    SettingParam,
    SsoToken,
    User,
    UserUpdate,
)

__all__ = [
    "POWER_ACTIONS",
    "AdminProduct",
    "ApiCredential",
    "BillingUsage",
    "ComputeStacksClient",
    "Container",
    "ContainerImage",
    "ImageVariant",
    "Listing",
    "Location",
    "NewOrder",
    "NewUser",
    "Order",
    "OrderContainer",
    "OrderStatus",
    "PlacedOrder",
    "Product",
    "Project",
    "Region",
    "Service",
    "SettingParam",
    "SsoToken",
    "User",
    "UserUpdate",
]
