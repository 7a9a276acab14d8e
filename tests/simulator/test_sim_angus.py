"""Angus: tokens, their expiry, the entities endpoint, its errors and its pagination."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.simulator.simclient import STREAM, Start, Vendor

THREE_DAYS = {
    "metrics": "passing_by,interested,stop_time,attention_time,gender,category,satisfaction",
    "from_date": "2024-03-04T00:00:00+00:00",
    "to_date": "2024-03-07T00:00:00+00:00",
    "time": "by_hour",
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims_of(token: str) -> Any:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


async def test_token_is_a_jwt_with_the_documented_claims(start: Start) -> None:
    vendor = await start(token_lifetime_s=600)
    token = await vendor.token()
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "HS256", "typ": "JWT"}
    claims = claims_of(token)
    assert claims["username"] == STREAM["username"]
    assert claims["client_id"] == STREAM["client_id"]
    assert claims["exp"] - claims["orig_iat"] == 600
    assert (await vendor.stats())["angus_tokens_issued"] == 1


async def test_token_endpoint_answers_without_trailing_slash(vendor: Vendor) -> None:
    answer = await vendor.post("/api-token-authstream", STREAM)
    assert answer.status == 200 and "token" in answer.json()


async def test_bad_credentials_get_the_drf_error(vendor: Vendor) -> None:
    answer = await vendor.post("/api-token-authstream/", STREAM | {"access_token": "nope"})
    assert answer.status == 400
    assert answer.json() == {"non_field_errors": ["Unable to log in with provided credentials."]}


async def test_missing_credential_field_gets_a_drf_field_error(vendor: Vendor) -> None:
    answer = await vendor.post("/api-token-authstream/", {"username": "demo@example.com"})
    assert answer.status == 400
    assert answer.json() == {
        "client_id": ["This field is required."],
        "access_token": ["This field is required."],
    }


async def test_expired_token_gets_401(start: Start) -> None:
    vendor = await start(token_lifetime_s=60)
    token = await vendor.token()
    assert (await vendor.get("/api/1/entities", THREE_DAYS, bearer(token))).status == 200
    vendor.clock.advance(61)
    answer = await vendor.get("/api/1/entities", THREE_DAYS, bearer(token))
    assert answer.status == 401
    assert answer.json() == {"detail": "Signature has expired."}
    assert (await vendor.stats())["angus_unauthorized"] == 1


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(None, id="missing"),
        pytest.param({"Authorization": "Bearer not.a.token"}, id="garbage"),
        pytest.param({"Authorization": "Bearer"}, id="empty"),
    ],
)
async def test_missing_or_bad_token_gets_401(vendor: Vendor, headers: Any) -> None:
    answer = await vendor.get("/api/1/entities", THREE_DAYS, headers)
    assert answer.status == 401
    assert set(answer.json()) == {"detail"}


async def test_tampered_token_gets_401(vendor: Vendor) -> None:
    head, _payload, signature = (await vendor.token()).split(".")
    forged = base64.urlsafe_b64encode(json.dumps({"client_id": "stream-2", "exp": 2**40}).encode())
    token = f"{head}.{forged.decode().rstrip('=')}.{signature}"
    assert (await vendor.get("/api/1/entities", THREE_DAYS, bearer(token))).status == 401


@pytest.mark.parametrize(
    ("change", "code"),
    [
        pytest.param({"metrics": "passing_by,footfall"}, "unexisting_metric", id="metric"),
        pytest.param({"metrics": None}, "missing_mandatory_param", id="no-metrics"),
        pytest.param({"from_date": None}, "missing_mandatory_param", id="no-from-date"),
        pytest.param({"time": "by_week"}, "unexisting_time", id="time"),
        pytest.param({"page": "4"}, "page_not_existing", id="page-beyond"),
        pytest.param({"page": "0"}, "page_not_existing", id="page-zero"),
        pytest.param({"from_date": "2024-03-04T00:00:00"}, "invalid_date_format", id="no-offset"),
    ],
)
async def test_bad_entities_parameter_gets_400_with_code(
    vendor: Vendor, change: dict[str, str | None], code: str
) -> None:
    params = {k: v for k, v in (THREE_DAYS | change).items() if v is not None}
    answer = await vendor.get("/api/1/entities", params, bearer(await vendor.token()))
    assert answer.status == 400
    body = answer.json()
    assert set(body) == {"code", "message"}
    assert body["code"] == code


async def test_pagination_follows_next_page_as_url_then_path(vendor: Vendor) -> None:
    headers = bearer(await vendor.token())
    answer = (await vendor.get("/api/1/entities", THREE_DAYS, headers)).json()
    assert set(answer) == {
        "entities",
        "time",
        "from_date",
        "to_date",
        "total_results",
        "nb_of_pages",
        "page",
        "next_page",
    }
    assert (answer["total_results"], answer["nb_of_pages"], answer["page"]) == (72, 3, 1)
    links, keys = [], list(answer["entities"])
    while answer["next_page"]:
        link = answer["next_page"]
        links.append(link)
        absolute = link if link.startswith("http") else vendor.url + link
        answer = (await vendor.get(absolute, None, headers)).json()
        keys += list(answer["entities"])
    assert links[0].startswith(vendor.url + "/api/1/entities?")
    assert links[1].startswith("/api/1/entities?")
    assert answer["page"] == 3 and answer["next_page"] == ""
    assert keys[0] == "2024-03-04T00:00:00+00:00"
    assert keys[-1] == "2024-03-06T23:00:00+00:00"
    assert len(set(keys)) == 72


async def test_next_page_style_knob_gives_paths_only(start: Start) -> None:
    vendor = await start(next_page_style="path", page_size=10)
    answer = await vendor.get("/api/1/entities", THREE_DAYS, bearer(await vendor.token()))
    assert answer.json()["nb_of_pages"] == 8
    assert answer.json()["next_page"].startswith("/api/1/entities?")


async def test_buckets_are_utc_with_all_zero_ones_present(vendor: Vendor) -> None:
    params = THREE_DAYS | {"from_date": "2024-03-04T02:00:00+02:00", "time": "by_day"}
    answer = await vendor.get("/api/1/entities", params, bearer(await vendor.token()))
    body = answer.json()
    assert list(body["entities"]) == [
        "2024-03-04T00:00:00+00:00",
        "2024-03-05T00:00:00+00:00",
        "2024-03-06T00:00:00+00:00",
    ]
    hourly = await vendor.get("/api/1/entities", THREE_DAYS, bearer(await vendor.token()))
    night = hourly.json()["entities"]["2024-03-04T03:00:00+00:00"]
    assert night["passing_by"] == {"value": 0}
    assert night["stop_time"] == {"value": None}


async def test_metric_shapes_are_as_documented(vendor: Vendor) -> None:
    params = THREE_DAYS | {"time": "global"}
    body = (await vendor.get("/api/1/entities", params, bearer(await vendor.token()))).json()
    assert list(body["entities"]) == ["global"]
    metrics = body["entities"]["global"]
    assert isinstance(metrics["passing_by"]["value"], int)
    assert isinstance(metrics["interested"]["value"], int)
    assert isinstance(metrics["stop_time"]["value"], float)
    assert isinstance(metrics["attention_time"]["value"], float)
    assert set(metrics["gender"]) == {"?", "female", "male"}
    assert set(metrics["category"]) == {
        "senior_female",
        "senior_male",
        "young_female",
        "young_male",
    }
    assert sum(metrics["gender"].values()) == metrics["interested"]["value"]
    assert set(metrics["satisfaction"]) == {"value"}
    assert (body["total_results"], body["nb_of_pages"], body["next_page"]) == (1, 1, "")


async def test_entities_are_deterministic_per_stream_and_change_with_late_uploads(
    vendor: Vendor, start: Start
) -> None:
    async def fetch(v: Vendor, stream: dict[str, str] = STREAM) -> Any:
        answer = await v.get("/api/1/entities", THREE_DAYS, bearer(await v.token(stream)))
        return answer.json()["entities"]

    first = await fetch(vendor)
    assert await fetch(await start()) == first
    assert (
        await fetch(vendor, STREAM | {"client_id": "stream-2", "access_token": "demo-access-2"})
        != first
    )
    await vendor.post("/_sim/late-uploads")
    assert await fetch(vendor) != first


async def test_angus_calls_are_counted(vendor: Vendor) -> None:
    token = await vendor.token()
    await vendor.get("/api/1/entities", THREE_DAYS, bearer(token))
    stats = await vendor.stats()
    assert (stats["angus_calls"], stats["calls"], stats["vidicenter_calls"]) == (2, 2, 0)
