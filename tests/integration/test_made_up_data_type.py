"""Adding a data type is one registry entry (plus its table): a made-up type with an option
of its own, in a copy of the registry, goes from the command line to its table."""

from __future__ import annotations

from datetime import date, datetime
from urllib.parse import parse_qsl

import asyncpg
import pytest

from ingest import ledger
from ingest.cli import build_parser
from ingest.commands.backfill import _vidicenter_plan, _VidiCenterPlan
from ingest.config import load_settings
from ingest.datatypes import (
    ACCOUNT_COLUMN,
    REGISTRY,
    Column,
    DataType,
    Fill,
    Option,
    OptionKind,
    Registry,
    TableSpec,
)
from ingest.domain import ScopeKind, Vendor
from ingest.jobspecs import days_between, vidicenter_specs
from ingest.pipeline import Context, packing, work_batch
from ingest.schedule import due_jobs
from ingest.wiring import retry_policy

from .fake_exports import FinishedAtOnce

WIDGET_COLOUR = Option("widget_colour", OptionKind.text, "the widgets' colour")
WIDGETS = DataType(
    "widgets",
    aliases=(),
    scope_kind=ScopeKind.location,
    resolutions=frozenset({"1h"}),
    aggregated=TableSpec(
        "widgets",
        (
            Column("location_id", "bigint", nullable=False),
            Column("time_resolution", "text", nullable=False, fill=Fill.time_resolution),
            Column("period_start", "timestamp", nullable=False),
            Column("widget_count", "bigint"),
            ACCOUNT_COLUMN,
            Column("extra", "jsonb", nullable=False, fill=Fill.extra),
        ),
        key=("account", "location_id", "time_resolution", "period_start"),
        slice_column=None,
    ),
    finest=None,
    options=(WIDGET_COLOUR,),
    default_resolution="1h",
)
WITH_WIDGETS = Registry(*REGISTRY, WIDGETS)
DAY = date(2024, 3, 5)

# the migration a real data type would come with
CREATE_TABLE = """
CREATE TABLE vidicenter.widgets (
    location_id bigint NOT NULL,
    time_resolution text NOT NULL,
    period_start timestamp NOT NULL,
    widget_count bigint,
    account text NOT NULL,
    extra jsonb NOT NULL DEFAULT '{}',
    ingested_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT widgets_natural_key UNIQUE (account, location_id, time_resolution, period_start)
)
"""


def test_the_command_line_offers_the_new_types_option_from_the_registry() -> None:
    args = build_parser(WITH_WIDGETS).parse_args(
        ["backfill", "--vendor", "vidicenter", "--data-type", "widgets", "--from", str(DAY),
         "--to", str(DAY), "--locations", "1,2", "--widget-colour", "red"]
    )  # fmt: skip
    assert args.widget_colour == "red"
    with pytest.raises(SystemExit):
        build_parser(REGISTRY).parse_args(["backfill", "--vendor", "x", "--widget-colour", "r"])


def test_the_schedule_keeps_the_new_type_up_to_date() -> None:
    jobs = due_jobs(
        datetime(2024, 3, 6, 12, 0).astimezone(),
        tz="UTC",
        lookback_days=0,
        account="h/u",
        vidicenter_types=[("widgets", "1h")],
        locations=["1"],
        registry=WITH_WIDGETS,
    )
    assert [(j.spec.data_type, str(j.spec.scope)) for j in jobs] == [("widgets", "location:1")]


async def test_a_made_up_type_is_backfilled_into_its_table_with_its_option_sent(
    pool: asyncpg.Pool,
) -> None:
    await pool.execute(CREATE_TABLE)
    settings = load_settings(
        vidicenter_username="u", vidicenter_token="t", vidicenter_locations="1,2"
    )
    args = build_parser(WITH_WIDGETS).parse_args(
        ["backfill", "--vendor", "vidicenter", "--data-type", "widgets", "--from", str(DAY),
         "--to", str(DAY), "--locations", "1,2", "--widget-colour", "red"]
    )  # fmt: skip
    plan = _vidicenter_plan(args, settings, days_between(DAY, DAY), WITH_WIDGETS)
    assert isinstance(plan, _VidiCenterPlan)
    specs = vidicenter_specs(plan.request, account=plan.account, location_ids=["1", "2"])
    assert {s.params["widget_colour"] for s in specs} == {"red"}

    vendor = FinishedAtOnce({"period_start": f"{DAY} 10:00:00", "widget_count": 3})
    ctx = Context(
        pool=pool,
        settings=settings,
        owner="test",
        policy=retry_policy(settings),
        registry=WITH_WIDGETS,
        vidicenter={plan.account: vendor},
    )
    async with pool.acquire() as conn:
        await ledger.enqueue_jobs(conn, specs, force=False)
        jobs = await ledger.claim_batch(
            conn,
            Vendor.vidicenter,
            owner="test",
            lease_s=60,
            packing=await packing(ctx, Vendor.vidicenter),
        )
    outcome = await work_batch(ctx, jobs)

    assert outcome.done == 2, outcome
    (query,) = vendor.queries
    assert ("widget_colour", "red") in parse_qsl(query)
    rows = await pool.fetch(
        "SELECT account, location_id, widget_count FROM vidicenter.widgets ORDER BY 2"
    )
    account = "vidicenter.quividi.com/u"
    assert [tuple(r) for r in rows] == [(account, 1, 3), (account, 2, 3)]
    assert await pool.fetchval("SELECT sum(rows_loaded) FROM ingest.jobs") == 2
