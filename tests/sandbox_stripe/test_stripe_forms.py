"""The bracketed form decoder against what the stripe library actually encodes."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stripe._encode import _api_encode

from csonboard.sandbox.stripe.errors import ApiError
from csonboard.sandbox.stripe.forms import as_list, decode


def encode_like_the_library(params: dict[str, Any]) -> list[tuple[str, str]]:
    """The library's own encoder, then a round trip through the wire format."""
    return parse_qsl(urlencode(list(_api_encode(params))), keep_blank_values=True)


def normalise(value: Any) -> Any:
    """Read every digit-keyed dict as the array it encodes."""
    if isinstance(value, dict):
        if value and all(k.isdigit() for k in value):
            return [normalise(v) for v in as_list(value, "x")]
        return {k: normalise(v) for k, v in value.items()}
    return value


def test_decodes_a_checkout_session_create_body() -> None:
    params = {
        "mode": "subscription",
        "line_items": [{"price": "price_a", "quantity": 2}, {"price": "price_b", "quantity": 1}],
        "metadata": {"order": "7", "note": ""},
        "expand": ["line_items", "customer"],
        "subscription_data": {"metadata": {"plan": "wp"}},
    }

    decoded = decode(encode_like_the_library(params))

    assert decoded["mode"] == "subscription"
    assert as_list(decoded["line_items"], "line_items") == [
        {"price": "price_a", "quantity": "2"},
        {"price": "price_b", "quantity": "1"},
    ]
    assert decoded["metadata"] == {"order": "7", "note": ""}
    assert as_list(decoded["expand"], "expand") == ["line_items", "customer"]
    assert decoded["subscription_data"] == {"metadata": {"plan": "wp"}}


def test_accepts_empty_bracket_arrays_as_curl_writes_them() -> None:
    decoded = decode([("expand[]", "line_items"), ("expand[]", "customer")])

    assert as_list(decoded["expand"], "expand") == ["line_items", "customer"]


@pytest.mark.parametrize(
    "pairs",
    [
        [("metadata", ""), ("metadata[k]", "v")],
        [("a[b]", "1"), ("a[b]", "2")],
        [("a]", "1")],
        [("a[][b]", "1")],
    ],
)
def test_refuses_contradictory_or_malformed_keys(pairs: list[tuple[str, str]]) -> None:
    with pytest.raises(ApiError) as refused:
        decode(pairs)

    assert refused.value.status == 400


_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
_leaves = st.text(max_size=12)
_values = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, min_size=1, max_size=3)
        | st.dictionaries(_keys, inner, min_size=1, max_size=3)
    ),
    max_leaves=10,
)


@given(st.dictionaries(_keys, _values, max_size=4))
def test_decode_inverts_the_librarys_encoding(params: dict[str, Any]) -> None:
    assert normalise(decode(encode_like_the_library(params))) == params
