"""The VidiCenter registry: names, resolutions, options and tables (the migrated
database's catalogue is checked against it in tests/integration/test_registry_catalogue.py)."""

from __future__ import annotations

import pytest

from ingest.datatypes import (
    AGGREGATES,
    CONTENT_IDS,
    FINEST,
    REGISTRY,
    DataType,
    Fill,
    OptionKind,
    ScopeKind,
    check_options,
    get_data_type,
    query_pairs,
    request_params,
    table_for,
)

CONTRACT_TABLES = {
    "viewers",
    "ots",
    "gate",
    "vehicles",
    "footfall",
    "vehicles_footfall",
    "im",
    "proof_of_play_by_location",
    "proof_of_play_by_site",
    "extrapolated_watchers",
    "extrapolated_ots",
    "viewers_finest",
    "vehicles_finest",
    "footfall_finest",
    "vehicles_footfall_finest",
    "viewers_apc",
    "viewers_apc_contents",
}


# --- names ----------------------------------------------------------------------------


def test_registry_holds_the_documented_data_types() -> None:
    assert set(REGISTRY.names) == {
        "viewers",
        "viewers_apc",
        "ots",
        "gate",
        "proof_of_play_by_location",
        "proof_of_play_by_site",
        "extrapolated_watchers",
        "extrapolated_ots",
        "vehicles",
        "footfall",
        "vehicles_footfall",
        "im",
    }


@pytest.mark.parametrize(
    ("name", "canonical"),
    [("persons", "footfall"), ("vehicles_persons", "vehicles_footfall"), ("ots", "ots")],
)
def test_names_and_aliases_resolve_to_the_canonical_data_type(name: str, canonical: str) -> None:
    assert get_data_type(name).name == canonical


def test_unknown_data_type_raises_key_error_listing_the_valid_names() -> None:
    with pytest.raises(KeyError) as caught:
        get_data_type("content_plays")
    message = str(caught.value)
    assert "'content_plays'" in message
    assert all(name in message for name in REGISTRY.names)
    assert "persons" in message


def test_table_names_are_the_contracts() -> None:
    assert {table.name for table in REGISTRY.tables()} == CONTRACT_TABLES
    assert len(REGISTRY.tables()) == len(CONTRACT_TABLES)


# --- resolutions ----------------------------------------------------------------------


@pytest.mark.parametrize("dt", REGISTRY, ids=lambda dt: dt.name)
def test_every_data_type_has_a_table_for_each_of_its_resolutions(dt: DataType) -> None:
    for resolution in dt.resolutions:
        table = table_for(dt, resolution)
        assert table is (dt.finest if resolution == FINEST else dt.aggregated)
    assert dt.default_resolution in dt.resolutions


def test_finest_is_offered_for_viewers_apc_and_the_event_types_only() -> None:
    with_finest = {dt.name for dt in REGISTRY if FINEST in dt.resolutions}
    assert with_finest == {"viewers", "viewers_apc", "vehicles", "footfall", "vehicles_footfall"}


def test_viewers_apc_is_finest_only_and_defaults_to_finest() -> None:
    dt = get_data_type("viewers_apc")
    assert dt.resolutions == {FINEST}
    assert dt.default_resolution == FINEST
    assert dt.aggregated is None


def test_im_is_hourly_only_and_the_others_offer_every_aggregate() -> None:
    assert get_data_type("im").resolutions == {"1h"}
    for dt in REGISTRY:
        if dt.name not in ("im", "viewers_apc"):
            assert dt.resolutions >= AGGREGATES
            assert dt.default_resolution == "1h"


@pytest.mark.parametrize(
    ("name", "resolution"),
    [
        ("ots", "finest"),
        ("gate", "finest"),
        ("proof_of_play_by_location", "finest"),
        ("proof_of_play_by_site", "finest"),
        ("extrapolated_watchers", "finest"),
        ("extrapolated_ots", "finest"),
        ("im", "finest"),
        ("im", "1d"),
        ("viewers_apc", "1h"),
        ("viewers", "2h"),
    ],
)
def test_resolution_not_offered_raises_value_error_naming_the_allowed_ones(
    name: str, resolution: str
) -> None:
    dt = get_data_type(name)
    with pytest.raises(ValueError, match=f"allowed: .*{sorted(dt.resolutions)[0]}"):
        table_for(dt, resolution)


# --- options --------------------------------------------------------------------------


def test_group_by_demographics_is_accepted_for_aggregated_viewers_only() -> None:
    viewers = get_data_type("viewers")
    check_options(viewers, "1h", {"group_by_demographics"})
    with pytest.raises(ValueError, match="group_by_demographics"):
        check_options(viewers, FINEST, {"group_by_demographics"})
    with pytest.raises(ValueError, match="group_by_demographics"):
        check_options(get_data_type("ots"), "1h", {"group_by_demographics"})


def test_content_ids_is_accepted_for_viewers_apc_and_proof_of_play() -> None:
    accepting = {dt.name for dt in REGISTRY if CONTENT_IDS in dt.options}
    assert accepting == {"viewers_apc", "proof_of_play_by_location", "proof_of_play_by_site"}
    check_options(get_data_type("viewers_apc"), FINEST, {"content_ids"})


def test_extrapolation_amount_is_mandatory_for_extrapolated_types() -> None:
    for name in ("extrapolated_watchers", "extrapolated_ots"):
        dt = get_data_type(name)
        check_options(dt, "1h", {"extrapolation_amount"})
        with pytest.raises(ValueError, match="requires extrapolation_amount"):
            check_options(dt, "1h", set())


# --- tables ---------------------------------------------------------------------------


def test_scope_kinds_follow_the_rows_scope_column() -> None:
    for dt in REGISTRY:
        for table in (dt.aggregated, dt.finest):
            if table is None:
                continue
            expected = {
                ScopeKind.location: "location_id",
                ScopeKind.site: "site_id",
                ScopeKind.extrapolated: None,
            }[dt.scope_kind]
            assert table.scope_column == expected, table.name


def test_aggregated_tables_have_a_natural_key_and_finest_tables_a_slice() -> None:
    for dt in REGISTRY:
        if dt.aggregated is not None:
            assert dt.aggregated.key is not None
            assert dt.aggregated.slice_column is None
            assert {"time_resolution", "period_start"} <= set(dt.aggregated.key)
        if dt.finest is not None:
            assert dt.finest.key is None
            assert dt.finest.slice_column == "location_id"


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("viewers", ("location_id", "time_resolution", "period_start", "gender", "age")),
        ("ots", ("location_id", "time_resolution", "period_start")),
        ("gate", ("location_id", "time_resolution", "period_start", "gate_id")),
        (
            "proof_of_play_by_location",
            ("location_id", "time_resolution", "period_start", "content_id"),
        ),
        ("proof_of_play_by_site", ("site_id", "time_resolution", "period_start", "content_id")),
        (
            "extrapolated_watchers",
            ("scope", "extrapolation_amount", "time_resolution", "period_start"),
        ),
    ],
)
def test_natural_keys_are_the_contracts_led_by_the_account(name: str, key: tuple[str, ...]) -> None:
    aggregated = get_data_type(name).aggregated
    assert aggregated is not None
    assert aggregated.key == ("account", *key)  # location ids are per account


def test_every_table_but_a_child_names_its_rows_account() -> None:
    for table in REGISTRY.tables():
        expected = None if table.parent_column else "account"
        assert table.account_column == expected, table.name


def test_key_columns_are_not_null_except_viewers_gender_and_age() -> None:
    for table in REGISTRY.tables():
        by_name = {column.name: column for column in table.columns}
        for name in table.key or ():
            expected = table.name == "viewers" and name in ("gender", "age")
            assert by_name[name].nullable is expected, (table.name, name)


def test_metric_columns_are_nullable_for_placeholder_rows() -> None:
    for table in REGISTRY.tables():
        fixed = {*(table.key or ()), "location_id", "site_id", "period_start"}
        for column in table.columns:
            if column.fill is Fill.payload and column.name not in fixed:
                assert column.nullable, (table.name, column.name)


def test_columns_end_with_extra_and_leave_out_ingested_at_and_ids() -> None:
    for table in REGISTRY.tables():
        assert table.columns[-1].name == "extra"
        assert table.columns[-1].pg_type == "jsonb"
        assert not {"ingested_at", "id", "viewers_apc_id"} & set(table.column_names)


def test_viewers_apc_takes_start_time_as_period_start_and_contents_as_children() -> None:
    apc = table_for(get_data_type("viewers_apc"), FINEST)
    period = next(column for column in apc.columns if column.name == "period_start")
    assert period.source == "start_time"
    assert apc.child is not None and apc.child.name == "viewers_apc_contents"
    assert apc.child_source == "contents"
    assert apc.id_sequence == "vidicenter.viewers_apc_id_seq"
    assert apc.child.parent_column == "viewers_apc_id"
    assert "contents" in apc.documented_keys and "start_time" in apc.documented_keys
    assert "period_start" not in apc.documented_keys


def test_fractional_quantities_are_double_precision() -> None:
    types = {(t.name, c.name): c.pg_type for t in REGISTRY.tables() for c in t.columns}
    for key in [
        ("viewers", "conversion_ratio"),
        ("proof_of_play_by_location", "total_dwell_time_in_tenths_of_sec"),
        ("proof_of_play_by_site", "impressions_per_play"),
        ("ots", "duration"),
        ("vehicles_finest", "vehicle_impressions"),
        ("im", "im"),
        ("viewers_finest", "very_happy"),
    ]:
        assert types[key] == "double precision", key
    for key in [("vehicles_finest", "color"), ("viewers", "gender"), ("gate", "gate_id")]:
        assert types[key] in ("integer", "bigint"), key
    assert types[("im", "backup_value")] == "text"
    assert types[("viewers_apc_contents", "campaign_id")] == "text"


# --- options: declared once, rendered for the query --------------------------------


def test_every_option_is_declared_once_with_its_flag() -> None:
    flags = {o.name: o.flag for o in REGISTRY.options()}
    assert flags == {
        "group_by_demographics": "--group-by-demographics",
        "content_ids": "--content-ids",
        "extrapolation_amount": "--extrapolation-amount",
    }
    assert {o.name: o.kind for o in REGISTRY.options()}["group_by_demographics"] is (
        OptionKind.flag
    )


def test_query_sends_a_flag_only_when_on_and_text_only_when_given() -> None:
    viewers = get_data_type("viewers")
    assert query_pairs(viewers, {"group_by_demographics": True}) == [("group_by_demographics", "1")]
    assert query_pairs(viewers, {"group_by_demographics": False}) == []
    pop = get_data_type("proof_of_play_by_site")
    assert query_pairs(pop, {"content_ids": "9,10"}) == [("content_ids", "9,10")]
    assert query_pairs(pop, {"content_ids": ""}) == []


@pytest.mark.parametrize(("amount", "sent"), [(None, ""), ("", ""), (250, "250"), ("1000", "1000")])
def test_query_sends_the_extrapolation_amount_even_when_empty(amount: object, sent: str) -> None:
    dt = get_data_type("extrapolated_ots")
    assert query_pairs(dt, {"extrapolation_amount": amount}) == [("extrapolation_amount", sent)]


def test_a_required_option_left_out_takes_its_default_and_others_stay_out() -> None:
    assert request_params(get_data_type("extrapolated_ots"), "1h", {}) == {
        "extrapolation_amount": ""
    }
    assert request_params(get_data_type("viewers"), "1h", {"group_by_demographics": False}) == {}


def test_query_leaves_out_options_the_type_does_not_take() -> None:
    assert query_pairs(get_data_type("ots"), {"force_rebuild": True, "content_ids": "1"}) == []
