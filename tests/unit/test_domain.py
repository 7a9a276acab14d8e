"""Scopes: one encoding, one parse, and the query parameters of scopes that share an export."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.domain import SOURCE_KINDS, Scope, ScopeKind, export_sources

ids = st.lists(st.integers(1, 10**9).map(str), min_size=1, max_size=5)
single = st.builds(
    Scope,
    st.sampled_from([ScopeKind.location, ScopeKind.site]),
    st.integers(1, 10**9).map(str),
) | st.builds(Scope.stream, st.text("abcdef-_0123456789", min_size=1, max_size=20))
request = st.dictionaries(st.sampled_from(SOURCE_KINDS), ids, min_size=1).map(Scope.request)


@given(single | request)
def test_a_scope_parses_back_from_its_encoding(scope: Scope) -> None:
    assert Scope.parse(scope.encode()) == scope


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("location:1056", Scope.location(1056)),
        ("site:178", Scope.site(178)),
        ("stream:cid-1", Scope.stream("cid-1")),
        ("locations:1,2,3;sites:9", Scope.request({"locations": ["1", "2", "3"], "sites": ["9"]})),
    ],
)
def test_the_ledgers_scope_texts_are_the_contracts(text: str, scope: Scope) -> None:
    assert Scope.parse(text) == scope
    assert scope.encode() == text


def test_a_request_scope_lists_its_sources_in_query_order() -> None:
    scope = Scope.request({"site_tags": ["7"], "locations": ["1"]})
    assert scope.encode() == "locations:1;site_tags:7"


@pytest.mark.parametrize("text", ["1056", "planet:3", "locations:1;moons:2"])
def test_text_that_is_no_scope_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Scope.parse(text)


def test_scopes_sharing_an_export_become_its_scope_parameters() -> None:
    assert export_sources([Scope.location(1), Scope.location(2)]) == {"locations": ["1", "2"]}
    assert export_sources([Scope.site(9)]) == {"sites": ["9"]}
    request = Scope.request({"locations": ["1", "2"], "sites": ["9"]})
    assert export_sources([request]) == {"locations": ["1", "2"], "sites": ["9"]}
    with pytest.raises(ValueError):
        export_sources([request, request])
