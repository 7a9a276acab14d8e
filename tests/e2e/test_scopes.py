"""How `ingest backfill` turns --locations, --sites and tags into jobs, through the
simulator's topology calls (with --enqueue-only: the jobs are the result)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from ingest.simulator import RunningSimulator, SimConfig, run_simulator

from .ingest_process import ingest, ingest_env


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    async with run_simulator(SimConfig()) as running:
        yield running


async def _topology(sim: RunningSimulator) -> dict[str, dict[int, set[int]]]:
    t = sim.state.topology
    return {
        "site": {s.id: {loc.id for loc in t.site_locations(s.id)} for s in t.sites},
        "location_tag": {tag.id: set(tag.member_ids) for tag in t.location_tags},
        "site_tag": {tag.id: set(tag.member_ids) for tag in t.site_tags},
        "site_of": {loc.id: {loc.site_id} for loc in t.locations},
    }


async def _scopes(
    db_url: str, sim: RunningSimulator, tmp_path: Path, *args: str
) -> tuple[int, set[str], str]:
    env = ingest_env(db_url, sim, [])
    del env["INGEST_ANGUS_STREAMS"]
    done = await ingest(
        env,
        tmp_path,
        "backfill",
        "--vendor",
        "vidicenter",
        "--from",
        "2024-03-01",
        "--to",
        "2024-03-01",
        "--enqueue-only",
        *args,
    )
    conn = await asyncpg.connect(db_url)
    try:
        scopes = {r["scope"] for r in await conn.fetch("SELECT scope FROM ingest.jobs")}
        await conn.execute("DELETE FROM ingest.jobs")
    finally:
        await conn.close()
    return done.returncode, scopes, done.output


async def test_sites_and_tags_become_one_job_per_location_they_hold(
    db_url: str, tmp_path: Path, sim: RunningSimulator
) -> None:
    topo = await _topology(sim)
    site = next(iter(topo["site"]))
    code, scopes, out = await _scopes(
        db_url, sim, tmp_path, "--data-type", "viewers", "--sites", str(site)
    )
    assert code == 0, out
    assert scopes == {f"location:{i}" for i in topo["site"][site]}

    tag, members = next(iter(topo["location_tag"].items()))
    code, scopes, out = await _scopes(
        db_url,
        sim,
        tmp_path,
        "--data-type",
        "viewers",
        "--location-tags",
        str(tag),
        "--locations",
        "1002",
    )
    assert code == 0, out
    assert scopes == {f"location:{i}" for i in members | {1002}}

    site_tag, tagged_sites = next(iter(topo["site_tag"].items()))
    code, scopes, out = await _scopes(
        db_url, sim, tmp_path, "--data-type", "ots", "--site-tags", str(site_tag)
    )
    assert code == 0, out
    assert scopes == {f"location:{i}" for s in tagged_sites for i in topo["site"][s]}


async def test_a_per_site_type_takes_the_sites_of_the_named_locations_and_tags(
    db_url: str, tmp_path: Path, sim: RunningSimulator
) -> None:
    topo = await _topology(sim)
    code, scopes, out = await _scopes(
        db_url, sim, tmp_path, "--data-type", "proof_of_play_by_site", "--locations", "1001"
    )
    assert code == 0, out
    assert scopes == {f"site:{s}" for s in topo["site_of"][1001]}

    site_tag, tagged_sites = next(iter(topo["site_tag"].items()))
    code, scopes, out = await _scopes(
        db_url, sim, tmp_path, "--data-type", "proof_of_play_by_site", "--site-tags", str(site_tag)
    )
    assert code == 0, out
    assert scopes == {f"site:{s}" for s in tagged_sites}


async def test_an_unknown_tag_exits_2_naming_the_option(
    db_url: str, tmp_path: Path, sim: RunningSimulator
) -> None:
    code, scopes, out = await _scopes(
        db_url, sim, tmp_path, "--data-type", "viewers", "--location-tags", "999999"
    )
    assert code == 2, out
    assert "--location-tags: no such tag 999999" in out
    assert scopes == set()
