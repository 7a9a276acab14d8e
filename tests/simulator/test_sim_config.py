"""Knobs from the command line, from code and over HTTP."""

from __future__ import annotations

import argparse
import asyncio
import json
import re

import aiohttp
import pytest
import structlog

from ingest.simulator import SimConfig, add_arguments, config_from_args, run_simulator, serve
from ingest.simulator.config import knob_fields
from tests.simulator.simclient import Vendor


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_command_line_defaults_are_the_config_defaults() -> None:
    args = parse()
    assert (args.host, args.port) == ("127.0.0.1", 8089)
    assert config_from_args(args) == SimConfig()


def test_every_knob_has_a_command_line_option() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = {opt for action in parser._actions for opt in action.option_strings}
    for field in knob_fields():
        assert "--" + field.name.replace("_", "-") in options


def test_command_line_options_set_the_knobs() -> None:
    streams = [{"username": "u@example.com", "client_id": "c", "access_token": "t"}]
    args = parse(
        "--port=0",
        "--seed=7",
        "--build-seconds=0.5",
        "--fail-share=0.25",
        "--extra-keys",
        "--no-bad-enums",
        "--vidicenter-username=alice",
        "--vidicenter-token=secret",
        f"--angus-streams={json.dumps(streams)}",
        "--next-page-style=url",
        "--finest-rows-per-hour=8400",
    )
    config = config_from_args(args)
    assert args.port == 0
    assert (config.seed, config.build_seconds, config.fail_share) == (7, 0.5, 0.25)
    assert (config.extra_keys, config.bad_enums) == (True, False)
    assert (config.vidicenter_username, config.vidicenter_token) == ("alice", "secret")
    assert config.angus_streams == streams
    assert (config.next_page_style, config.finest_rows_per_hour) == ("url", 8400)


def test_bad_angus_streams_option_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        parse("--angus-streams=[1]")


@pytest.mark.parametrize(
    "knobs",
    [
        {"fail_share": 1.5},
        {"page_size": 0},
        {"time_scale": 0.0},
        {"next_page_style": "both"},
        {"site_moves": "1002"},
        {"site_moves": "1002:x"},
    ],
)
def test_out_of_range_knob_is_refused(knobs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SimConfig(**knobs)  # type: ignore[arg-type]


async def test_sim_config_endpoint_refuses_unknown_or_mistyped_knobs(vendor: Vendor) -> None:
    for body in ({"no_such_knob": 1}, {"seed": "7"}, {"extra_keys": 1}, [1]):
        answer = await vendor.post("/_sim/config", body)
        assert answer.status == 400
        assert answer.json()["error"] == 400
    assert (await vendor.get("/_sim/config", headers=None)).json()["seed"] == 42


async def test_sim_config_endpoint_changes_knobs(vendor: Vendor) -> None:
    answer = await vendor.post("/_sim/config", {"location_count": 3, "slow_seconds": 1})
    assert answer.json()["location_count"] == 3
    assert answer.json()["slow_seconds"] == 1.0
    locations = (await vendor.get("/api/v1/locations/")).json()
    assert [loc["id"] for loc in locations] == [1001, 1002, 1003, 1004]


async def test_run_simulator_serves_on_a_free_port() -> None:
    async with run_simulator(SimConfig(), host="127.0.0.1", port=0) as sim:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sim.url)
        assert sim.state.stats()["calls"] == 0


async def test_serve_logs_its_url_and_credentials_and_serves_until_cancelled() -> None:
    async with asyncio.TaskGroup() as group:
        with structlog.testing.capture_logs() as logs:
            task = group.create_task(serve(SimConfig(), host="127.0.0.1", port=0))
            for _ in range(200):
                if logs:
                    break
                await asyncio.sleep(0.01)
        (line,) = logs
        assert line["event"] == "simulator.serving"
        assert (line["vidicenter_username"], line["vidicenter_token"]) == ("demo", "demo-token")
        assert [s["client_id"] for s in line["angus_streams"]] == ["stream-1", "stream-2"]
        async with aiohttp.ClientSession() as session, session.get(line["stats"]) as response:
            assert response.status == 200
        task.cancel()
