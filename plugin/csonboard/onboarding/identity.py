"""Who the buyer is: the Stripe customer of a guest checkout
(:func:`guest_customer`, for ``ensure_stripe_customer``) and the ComputeStacks
user both systems agree is that customer (``ensure_cs_user``).

Identity: ``external_id`` = the Stripe customer id, labels
``{"stripe": {"customer_id": ...}}``, ``bypass_billing`` (Stripe bills, not
ComputeStacks). A repeat buyer is found by ``external_id`` and reused; a repeat
*guest* (no customer on the session) is first given the Stripe customer
csonboard made their ComputeStacks user for (:func:`repeat_buyer`), so one
person stays one user with one ``external_id``.

Crash safety: the user is looked up by ``external_id`` before it is created, so
a retry after a create whose answer was lost finds the user instead of making a
second one (ComputeStacks has no idempotency keys, but email uniqueness would
refuse the second anyway). The generated password is random, sent once and
kept nowhere: the customer logs in through SSO or a password reset.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from csonboard.computestacks import NewUser, User, UserUpdate
from csonboard.errors import ComputeStacksValidationError, OnboardingRefused, TransientError
from csonboard.onboarding.run import Run
from csonboard.stripe_api import Address, Buyer

EMAIL_TAKEN = "Email has already been taken"
SESSION_METADATA = "csonboard_session"
"""The metadata key naming the session a guest's Stripe customer was made for."""


def ensure_cs_user(run: Run) -> dict[str, Any]:
    customer = run.result("ensure_stripe_customer")["customer_id"]
    cs = run.services.cs
    user = cs.find_user_by_external_id(customer)
    how = "found"
    if user is None:
        new_user = new_user_for(run, customer)
        try:
            user = cs.create_user(new_user)
            how = "created"
        except ComputeStacksValidationError as exc:
            if not any(EMAIL_TAKEN in str(error) for error in exc.errors):
                raise OnboardingRefused(f"ComputeStacks refused the new user: {exc}") from exc
            user = _email_conflict(run, customer, new_user.email)
            how = "adopted"
    run.fields.update(cs_user_id=user.id)
    return {"user_id": user.id, "email": user.email, "how": how}


def new_user_for(run: Run, customer: str) -> NewUser:
    """The ComputeStacks user for the buyer: names from ``customer_details.name``
    (the last word is the last name; a single word or none falls back to the
    email's local part), address and phone as typed, the session's currency in
    upper case (ComputeStacks would silently replace lower case) and locale."""
    session = run.result("fetch_session")
    buyer = session["buyer"]
    email = (buyer["email"] or "").strip()
    if not email:
        raise OnboardingRefused(
            f"session {run.session_id} has no customer email; ComputeStacks needs one"
        )
    local = email.split("@")[0]
    words = (buyer["name"] or "").split()
    fname = " ".join(words[:-1]) if len(words) > 1 else (words[0] if words else local)
    lname = words[-1] if len(words) > 1 else local
    address = buyer["address"] or {}
    locale = (session["locale"] or "").split("-")[0]
    return NewUser(
        fname=fname[:100],
        lname=lname[:100],
        email=email,
        password=secrets.token_urlsafe(32),
        external_id=customer,
        bypass_billing=True,
        skip_email_confirm=run.services.policy.skip_email_confirm,
        currency=(session["currency"] or "").upper() or None,
        locale=locale if locale and locale != "auto" else None,
        user_group_id=run.result("resolve_plan")["user_group_id"],
        phone=buyer["phone"],
        address1=address.get("line1"),
        address2=address.get("line2"),
        city=address.get("city"),
        state=address.get("state"),
        zip=address.get("postal_code"),
        country=address.get("country"),
        merge_labels={"stripe": {"customer_id": customer}},
    )


def _email_conflict(run: Run, customer: str, email: str) -> User:
    """The buyer's email already has an account. Policy ``fail``: a person
    decides. Policy ``adopt``: link the account, if nobody else claims it and
    it is not an admin's."""
    cs = run.services.cs
    existing = cs.find_user_by_email(email)
    if existing is None:
        # Taken a moment ago, gone now (deleted?): try again from the top.
        raise TransientError(f"{email} was reported taken but cannot be found; retrying")
    if not run.result("fetch_session")["customer"]:
        # A guest whose account csonboard made for another customer: two
        # purchases of one buyer onboarded at once, or the account appeared
        # after ensure_stripe_customer looked. Re-running that step joins it.
        earlier, _ = _made_by_csonboard(run, existing, email)
        if earlier is not None and earlier.customer_id != customer:
            raise OnboardingRefused(
                f"{email} already has ComputeStacks user #{existing.id}, which csonboard made "
                f"for Stripe customer {earlier.customer_id} (onboarding "
                f"{earlier.session_id}), while this guest checkout was given Stripe customer "
                f"{customer}. Run `csonboard replay --session {run.session_id} --from-step "
                f"ensure_stripe_customer`: the purchase then goes to "
                f"{earlier.customer_id} and its user"
            )
    if run.services.policy.on_email_conflict != "adopt":
        raise OnboardingRefused(
            f"{email} already has ComputeStacks user #{existing.id}, not linked to Stripe "
            f'customer {customer}. Set onboarding.on_email_conflict = "adopt" to link accounts '
            f"without an external_id, or resolve it in ComputeStacks; then run "
            f"`csonboard replay --session {run.session_id}`"
        )
    if existing.is_admin:
        # Checkout does not prove the buyer owns the email: whoever types an
        # admin's address must not get csonboard to act on that account.
        raise OnboardingRefused(
            f"{email} belongs to ComputeStacks admin #{existing.id}: an admin account is "
            f"never adopted. Check who bought this; to go on, have the buyer use another "
            f"email, then run `csonboard replay --session {run.session_id}`"
        )
    if existing.external_id and existing.external_id != customer:
        raise OnboardingRefused(
            f"{email} already has ComputeStacks user #{existing.id}, linked to "
            f"{existing.external_id!r}, not to {customer}: not adopted. Resolve it in "
            f"ComputeStacks, then run `csonboard replay --session {run.session_id}`"
        )
    return cs.update_user(
        existing.id,
        UserUpdate(
            external_id=customer,
            bypass_billing=True,
            merge_labels={"stripe": {"customer_id": customer, "adopted": True}},
        ),
    )


# -- the Stripe customer of a guest checkout (ensure_stripe_customer) ----------------


@dataclass(frozen=True)
class EarlierCustomer:
    """The Stripe customer csonboard made a ComputeStacks user for."""

    customer_id: str
    user_id: int
    session_id: str
    """An onboarding that recorded ``customer_id`` as its customer."""


def guest_customer(run: Run) -> dict[str, Any]:
    """The Stripe customer of a guest checkout, looking before creating. The first of:

    1. the customer of the buyer's ComputeStacks user, if csonboard made that
       user (:func:`repeat_buyer`): a repeat guest stays one person;
    2. the customer an earlier try of this onboarding recorded
       (``onboardings.customer_id``), also when the step is replayed after
       Stripe forgot the idempotency key (24 hours), unless Stripe deleted it;
    3. a customer Stripe has for this session (metadata ``csonboard_session``),
       made by a try whose answer was lost;
    4. a new one from the buyer's details, with a deterministic idempotency key.

    (1) before (2) differs only when this onboarding recorded a customer that
    no ComputeStacks user can be linked to (the buyer's email is taken by the
    account of the earlier customer): the purchase joins that account.
    """
    session = run.result("fetch_session")
    buyer = session["buyer"]
    email = (buyer["email"] or "").strip()
    recorded = run.onboarding.customer_id
    stripe = run.services.stripe
    not_joined: str | None = None
    if email:
        earlier, not_joined = repeat_buyer(run, email)
        if earlier is not None:
            joined = (
                f"the buyer's email {email} has ComputeStacks user #{earlier.user_id}, which "
                f"csonboard made for Stripe customer {earlier.customer_id} (onboarding "
                f"{earlier.session_id})"
            )
            found: dict[str, Any] = {
                "customer_id": earlier.customer_id,
                "created": False,
                "cs_user_id": earlier.user_id,
                "earlier_session": earlier.session_id,
            }
            if earlier.customer_id == recorded:
                found.update(how="recorded", reason=f"recorded by an earlier try; {joined}")
            else:
                reason = f"repeat guest: {joined}; that customer is reused"
                if recorded:
                    reason += f" instead of {recorded}, recorded by an earlier try"
                    found["instead_of"] = recorded
                found.update(how="repeat_buyer", reason=reason)
            return _chosen(run, found)
    notes = {"not_joined": not_joined} if not_joined else {}
    replacing: str | None = None
    if recorded:
        kept = stripe.customer(recorded)
        if kept is not None and not kept.deleted:
            reason = "recorded by an earlier try of this onboarding"
            return _chosen(run, {**_found(recorded, "recorded", reason), **notes})
        replacing = recorded  # deleted in Stripe: a new one, under a new key
    if buyer["email"]:
        for customer in stripe.customers_with_email(buyer["email"]):
            if customer.metadata.get(SESSION_METADATA) == run.session_id:
                reason = "made for this session by an earlier try whose answer was lost"
                return _chosen(run, {**_found(customer.id, "found", reason), **notes})
    key = f"csonboard-customer-{run.session_id}"
    if replacing:
        key += f"-after-{replacing}"
    created = stripe.create_customer(
        Buyer(
            email=buyer["email"],
            name=buyer["name"],
            phone=buyer["phone"],
            address=Address(**buyer["address"]) if buyer["address"] else None,
        ),
        metadata={SESSION_METADATA: run.session_id},
        idempotency_key=key,
    )
    reason = "created for a guest checkout"
    if replacing:
        reason += f", replacing {replacing} (recorded by an earlier try, deleted in Stripe)"
    result = {"customer_id": created, "created": True, "how": "created", "reason": reason}
    return _chosen(run, {**result, **notes})


def repeat_buyer(run: Run, email: str) -> tuple[EarlierCustomer | None, str | None]:
    """The Stripe customer csonboard made the ComputeStacks user with ``email``
    for: ``(customer, None)``. ``(None, why)`` when a user has the email but is
    not csonboard's for a customer that may be reused (the email-conflict
    policy then decides, as for any account); ``(None, None)`` when no user has
    it. ComputeStacks compares emails lower-cased (Devise's
    ``case_insensitive_keys``)."""
    user = run.services.cs.find_user_by_email(email)
    if user is None:
        return None, None
    return _made_by_csonboard(run, user, email)


def _made_by_csonboard(
    run: Run, user: User, email: str
) -> tuple[EarlierCustomer | None, str | None]:
    """Whether csonboard made ``user`` for a Stripe customer that is the buyer's:
    its ``external_id`` is a customer an onboarding recorded, which Stripe still
    has (not deleted) with the buyer's email."""
    who = f"ComputeStacks user #{user.id} ({user.email})"
    if user.is_admin:
        return None, f"{who} is an admin: never joined"
    customer = user.external_id
    if not customer:
        return None, f"{who} has no external_id: csonboard did not make it"
    # Newest first; another onboarding than this one names the earlier purchase.
    earlier = run.ledger.onboardings.find(customer_id=customer, limit=2)
    earlier.sort(key=lambda onboarding: onboarding.session_id == run.session_id)
    if not earlier:
        return None, f"{who} is linked to {customer!r}, a customer no onboarding recorded"
    found = run.services.stripe.customer(customer)
    if found is None or found.deleted:
        state = "deleted" if found else "unknown"
        return None, f"{who} is linked to Stripe customer {customer}, which is {state} in Stripe"
    if (found.email or "").strip().lower() != email.strip().lower():
        return None, (
            f"{who} is linked to Stripe customer {customer}, whose email "
            f"({found.email or 'none'}) is not the buyer's"
        )
    return EarlierCustomer(customer, user.id, earlier[0].session_id), None


def _found(customer: str, how: str, reason: str) -> dict[str, Any]:
    return {"customer_id": customer, "created": False, "how": how, "reason": reason}


def _chosen(run: Run, result: dict[str, Any]) -> dict[str, Any]:
    run.fields.update(customer_id=result["customer_id"])
    return result
