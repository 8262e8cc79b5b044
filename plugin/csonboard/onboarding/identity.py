"""``ensure_cs_user``: the ComputeStacks user both systems agree is this customer.

Identity: ``external_id`` = the Stripe customer id, labels
``{"stripe": {"customer_id": ...}}``, ``bypass_billing`` (Stripe bills, not
ComputeStacks). A repeat buyer is found by ``external_id`` and reused.

Crash safety: the user is looked up by ``external_id`` before it is created, so
a retry after a create whose answer was lost finds the user instead of making a
second one (ComputeStacks has no idempotency keys, but email uniqueness would
refuse the second anyway). The generated password is random, sent once and
kept nowhere: the customer logs in through SSO or a password reset.
"""

from __future__ import annotations

import secrets
from typing import Any

from csonboard.computestacks import NewUser, User, UserUpdate
from csonboard.errors import ComputeStacksValidationError, OnboardingRefused, TransientError
from csonboard.onboarding.run import Run

EMAIL_TAKEN = "Email has already been taken"


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
