"""User and credential rules of the admin API: the Basic-auth lockout
(``app/models/user/api_credential.rb``), users and their labels
(``app/controllers/api/admin/users_controller.rb``, ``app/models/user.rb``), the
lookup flags (``app/controllers/concerns/api_admin_find_user.rb``) and API
credentials (``app/controllers/api/admin/users/api_credentials_controller.rb``).

Each rule takes the :class:`~.state.World` (its lock held by the caller) and
the request's parameters, and returns the record or a
:class:`~.records.Refusal`. Messages follow the controller's wording.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import secrets
from collections.abc import Mapping

from csonboard.sandbox.computestacks.records import (
    CredentialRecord,
    Refusal,
    UserRecord,
    check_password,
    hash_password,
)
from csonboard.sandbox.computestacks.state import LOCK_SECONDS, MAX_FAILED_ATTEMPTS, World

_SCALAR_FIELDS = frozenset(
    {
        "fname",
        "lname",
        "email",
        "password",
        "password_confirmation",
        "active",
        "is_admin",
        "currency",
        "external_id",
        "country",
        "city",
        "state",
        "address1",
        "address2",
        "zip",
        "bypass_billing",
        "vat",
        "skip_email_confirm",
        "company_name",
        "phone",
        "locale",
        "user_group_id",
    }
)
DETAIL_FIELDS = ("company_name", "phone", "address1", "address2", "city", "state", "zip", "vat")
_EMAIL = re.compile(r"\A[^@\s]+@[^@\s]+\Z")
_FALSE_STRINGS = frozenset({"0", "f", "false", "off", "no", "n"})


# -- Rails parameter semantics --------------------------------------------------------


def is_scalar(value: object) -> bool:
    """What strong params let through for a plain key: JSON scalars only."""
    return value is None or isinstance(value, str | int | float | bool)


def is_present(value: object) -> bool:
    """Ruby's ``present?``: nil, false and blank strings are not present."""
    if value is None or value is False:
        return False
    return not isinstance(value, str) or bool(value.strip())


def cast_bool(value: object) -> bool:
    """ActiveRecord's boolean cast: "0", "f", "false", "off", 0, false are false."""
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE_STRINGS and bool(value.strip())
    return bool(value)


def cast_text(value: object) -> str | None:
    """ActiveRecord's string cast of a JSON scalar."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)


def cast_int(value: object) -> int | None:
    """An integer from a JSON integer or a string of digits, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def permit_user(root: object) -> dict[str, object] | None:
    """Strong params for ``user``: permitted scalar fields plus ``merge_labels``
    when it is an object (an array or scalar is silently dropped, as Rails
    does). None when the root is missing or empty."""
    if not isinstance(root, dict) or not root:
        return None
    params = {k: v for k, v in root.items() if k in _SCALAR_FIELDS and is_scalar(v)}
    if isinstance(root.get("merge_labels"), dict):
        params["merge_labels"] = root["merge_labels"]
    return params


# -- users ------------------------------------------------------------------------------


def create_user(w: World, params: Mapping[str, object]) -> UserRecord | Refusal:
    """Create a user as ``POST /api/admin/users`` does, or refuse with every
    validation message."""
    errors: list[object] = []
    for key, label in (("fname", "Fname"), ("lname", "Lname")):
        if not is_present(params.get(key)):
            errors.append(f"{label} can't be blank")
    email = _check_email(w, params.get("email"), None, errors)
    password = params.get("password")
    if is_present(password):
        _check_password(params, errors)
    else:
        password = secrets.token_urlsafe(18)
    group_id = _check_group(w, params.get("user_group_id"), errors)
    if errors or group_id is None:
        return Refusal(422, errors)
    now = w.clock()
    labels = params.get("merge_labels")
    user = UserRecord(
        id=w.next_id("user"),
        fname=cast_text(params.get("fname")) or "",
        lname=cast_text(params.get("lname")) or "",
        email=email,
        password_hash=hash_password(str(password)),
        external_id=cast_text(params.get("external_id")),
        labels=copy.deepcopy(dict(labels)) if isinstance(labels, dict) else {},
        active=cast_bool(params.get("active", True)),
        is_admin=cast_bool(params.get("is_admin", False)),
        currency=_currency(w, params.get("currency")),
        locale=_locale(w, params.get("locale")),
        user_group_id=group_id,
        bypass_billing=cast_bool(params.get("bypass_billing", False)),
        # Ruby truthiness as the controller applies it: JSON true and any
        # non-blank string (even "false") confirm the account.
        confirmed_at=now if is_present(params.get("skip_email_confirm")) else None,
        details={k: cast_text(params.get(k)) for k in DETAIL_FIELDS},
        created_at=now,
        updated_at=now,
        auth_token_exp=now + 600,
    )
    user.details["country"] = cast_text(params.get("country")) or "US"
    w.users[user.id] = user
    return user


def update_user(w: World, user: UserRecord, params: Mapping[str, object]) -> Refusal | None:
    """Apply a ``PATCH /api/admin/users/{key}`` (all or nothing), or refuse."""
    errors: list[object] = []
    for key, label in (("fname", "Fname"), ("lname", "Lname")):
        if key in params and not is_present(params[key]):
            errors.append(f"{label} can't be blank")
    email = _check_email(w, params["email"], user.id, errors) if "email" in params else user.email
    if is_present(params.get("password")):
        _check_password(params, errors)
    group_id = user.user_group_id
    if "user_group_id" in params:
        group_id = _check_group(w, params["user_group_id"], errors) or group_id
    if errors:
        return Refusal(422, errors)
    for key in ("fname", "lname", "external_id"):
        if key in params:
            setattr(user, key, cast_text(params[key]))
    for key in ("active", "is_admin", "bypass_billing"):
        if key in params:
            setattr(user, key, cast_bool(params[key]))
    for key in (*DETAIL_FIELDS, "country"):
        if key in params:
            user.details[key] = cast_text(params[key])
    if is_present(params.get("password")):
        user.password_hash = hash_password(str(params["password"]))
    if "currency" in params:
        user.currency = _currency(w, params["currency"])
    if "locale" in params:
        user.locale = _locale(w, params["locale"])
    labels = params.get("merge_labels")
    if isinstance(labels, dict):
        # Shallow: each top-level key is replaced wholesale; null is stored.
        user.labels.update(copy.deepcopy(labels))
    user.email, user.user_group_id, user.updated_at = email, group_id, w.clock()
    return None


def _check_email(w: World, raw: object, self_id: int | None, errors: list[object]) -> str:
    email = (cast_text(raw) or "").strip().lower()
    if not email:
        errors.append("Email can't be blank")
    elif not _EMAIL.match(email):
        errors.append("Email is invalid")
    elif any(u.email == email and u.id != self_id for u in w.users.values()):
        # Devise's validatable and the model (app/models/user.rb) both
        # validate uniqueness, so the message comes twice.
        errors.extend(["Email has already been taken"] * 2)
    return email


def _check_password(params: Mapping[str, object], errors: list[object]) -> None:
    password = str(params.get("password"))
    if len(password) < 8:
        errors.append("Password is too short (minimum is 8 characters)")
    elif len(password) > 128:
        errors.append("Password is too long (maximum is 128 characters)")
    if "password_confirmation" in params and params["password_confirmation"] != password:
        errors.append("Password confirmation doesn't match Password")


def _check_group(w: World, raw: object, errors: list[object]) -> int | None:
    if not is_present(raw):
        return w.catalog.default_group().id
    group_id = cast_int(raw)
    if group_id not in w.catalog.groups:
        errors.append("User group must exist")
        return None
    return group_id


def _currency(w: World, raw: object) -> str:
    # The real callback swaps unknown codes for the default *before*
    # upper-casing, so "eur" becomes the default rather than "EUR".
    if not isinstance(raw, str) or raw not in w.catalog.currencies:
        return w.catalog.default_currency.upper()
    return raw.upper()


def _locale(w: World, raw: object) -> str:
    return raw if isinstance(raw, str) and raw in w.catalog.locales else "en"


def find_user(w: World, key: str, args: Mapping[str, str]) -> UserRecord | None:
    """Resolve ``/api/admin/users/{key}``; the query flags select how, as in the
    controller's ``app/controllers/concerns/api_admin_find_user.rb``."""
    label = args.get("find_by_label", "")
    number = cast_int(key)
    if label in ("whmcs_service_id", "whmcs_client_id") and number:
        field = label.removeprefix("whmcs_")
        for user in w.users.values():
            whmcs = user.labels.get("whmcs")
            if isinstance(whmcs, dict) and whmcs.get(field) == number:
                return user
        return None
    if args.get("find_by_external_id"):
        return next((u for u in w.users.values() if u.external_id == key), None)
    if args.get("find_by_email"):
        try:
            email = base64.b64decode(key.replace("%2F", "/")).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return next((u for u in w.users.values() if u.email == email), None)
    return w.users.get(number) if number is not None else None


# -- credentials --------------------------------------------------------------------------


def issue_credential(w: World, user: UserRecord, name: str) -> tuple[CredentialRecord, str]:
    """A fresh pair shaped like the real one (~19-char username, 40-char
    base64 password that may contain ``+ / =``); older pairs keep working.
    Returns the record and the only copy of the plaintext password."""
    username = secrets.token_urlsafe(14)
    password = base64.b64encode(secrets.token_bytes(30)).decode("ascii")
    return w.add_credential(user, name, username=username, password=password), password


def authenticate(w: World, username: str, password: str) -> UserRecord | None:
    """The user owning this pair, or None, as ``auth_request!``
    (``app/controllers/concerns/api_auth.rb``) and
    ``User::ApiCredential#valid_password?`` (``app/models/user/api_credential.rb``,
    over Devise 4.9.3's lockable) decide it.

    The pair is found by username whatever its user's ``active`` (the model's
    own ``find_by_username`` filtering on it is an instance method the
    controller never calls), so a suspended user's credentials authenticate.
    While the user is locked (for four hours from ``locked_at``) every try is
    refused and not counted. Otherwise a user with five failed attempts is
    locked by this try, whatever its password (``lock_access!``); a right
    password resets the count and the lock, a wrong one adds to the count.

    So the lock is taken by the try after the fifth wrong password, and it
    does not end after its four hours: the count is still five, so the next
    try locks the user again. Only Devise's ``unlock_access!`` ends it (the
    unlock e-mail's link, or a web sign-in after the four hours; the test
    controls' ``POST /_sandbox/unlock`` stands for them). With the simulator's
    ``lockout`` off, nobody is ever locked.
    """
    cred = w.credential_by_username(username)
    user = w.users.get(cred.user_id) if cred is not None else None
    if cred is None or user is None:
        return None
    now = w.clock()
    if user.locked_at is not None and now - user.locked_at < LOCK_SECONDS:
        return None
    if w.lockout and user.failed_attempts >= MAX_FAILED_ATTEMPTS:
        user.locked_at = now
        return None
    if check_password(password, cred.password_hash):
        if user.failed_attempts:
            unlock(user)
        return user
    user.failed_attempts += 1
    return None


def unlock(user: UserRecord) -> None:
    """Devise's ``unlock_access!``: no lock, no failed attempts."""
    user.locked_at, user.failed_attempts = None, 0
