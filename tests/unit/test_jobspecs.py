from datetime import date

import pytest

from ingest.datatypes import get_data_type
from ingest.errors import UsageError
from ingest.jobspecs import VidiCenterRequest, days_between, request_params, vidicenter_specs

DAY = date(2024, 3, 5)


def request(name: str, resolution: str = "1h", **options: object) -> VidiCenterRequest:
    return VidiCenterRequest(get_data_type(name), resolution, [DAY], {}, options)


@pytest.mark.parametrize(
    ("name", "resolution", "options", "flag"),
    [
        ("ots", "1h", {"group_by_demographics": True}, "--group-by-demographics"),
        ("viewers", "finest", {"group_by_demographics": True}, "--group-by-demographics"),
        ("ots", "1h", {"content_ids": "a"}, "--content-ids"),
        ("viewers", "1h", {"extrapolation_amount": "5"}, "--extrapolation-amount"),
        ("extrapolated_ots", "1h", {"extrapolation_amount": "five"}, "--extrapolation-amount"),
        ("ots", "finest", {}, "--resolution"),
        ("im", "1d", {}, "--resolution"),
    ],
)
def test_an_option_or_resolution_the_data_type_does_not_take_is_a_usage_error_naming_it(
    name: str, resolution: str, options: dict[str, object], flag: str
) -> None:
    with pytest.raises(UsageError, match=f"^{flag}: "):
        request_params(request(name, resolution, **options))


def test_options_a_type_takes_become_the_jobs_parameters() -> None:
    assert request_params(request("viewers", group_by_demographics=True)) == {
        "group_by_demographics": True
    }
    assert request_params(request("proof_of_play_by_site", content_ids="a,b")) == {
        "content_ids": "a,b"
    }
    # left out, the amount is empty: the average of the sampled locations
    assert request_params(request("extrapolated_watchers")) == {"extrapolation_amount": ""}


def test_one_job_per_scope_per_day_and_one_for_an_extrapolated_scope() -> None:
    days = days_between(DAY, date(2024, 3, 6))
    viewers = VidiCenterRequest(get_data_type("viewers"), "1h", days, {"locations": ["1", "2"]})
    specs = vidicenter_specs(viewers, account="h/u", location_ids=["1", "2"])
    assert len(specs) == 4 and {s.account for s in specs} == {"h/u"}
    extrapolated = VidiCenterRequest(
        get_data_type("extrapolated_ots"), "1h", days, {"locations": ["1", "2"], "sites": ["9"]}
    )
    scopes = {s.scope.encode() for s in vidicenter_specs(extrapolated, account="h/u")}
    assert scopes == {"locations:1,2;sites:9"}


def test_a_range_that_ends_after_today_is_a_usage_error_naming_to() -> None:
    with pytest.raises(UsageError, match=r"^--to: 2024-03-06 is after today \(2024-03-05\)"):
        days_between(DAY, date(2024, 3, 6), today=date(2024, 3, 5))
    assert days_between(DAY, DAY, today=DAY) == [DAY]  # today itself is accepted: it is open


def test_a_range_that_ends_before_it_starts_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="before --from"):
        days_between(DAY, date(2024, 3, 4))
