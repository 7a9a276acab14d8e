"""A vendor account whose credentials are refused is paused on its own, for a while."""

from ingest.commands.run import Pauses
from ingest.domain import Vendor
from ingest.errors import AuthError
from ingest.metrics import Metrics

ALICE, BOB = "v.example/alice", "v.example/bob"


def sample(metrics: Metrics, name: str, account: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"vendor": "vidicenter", "account": account})


async def test_a_refused_account_is_paused_alone_with_its_reason_and_counted() -> None:
    metrics = Metrics(accounts={"vidicenter": [ALICE, BOB]})
    pauses = Pauses(metrics)
    refused = AuthError(f"VidiCenter account {ALICE} refused the credentials (401)")

    pauses.pause(Vendor.vidicenter, ALICE, refused, 900)

    assert pauses.remaining(Vendor.vidicenter, ALICE) > 899
    assert pauses.remaining(Vendor.vidicenter, BOB) == 0
    assert pauses.reasons() == {f"vidicenter:{ALICE}": str(refused)}
    assert pauses.refused == [refused]
    assert sample(metrics, "ingest_vendor_paused", ALICE) == 1
    assert sample(metrics, "ingest_vendor_paused", BOB) == 0
    assert sample(metrics, "ingest_vendor_pauses_total", ALICE) == 1


async def test_a_pause_that_is_over_is_lifted_when_next_asked_and_the_health_hears_both() -> None:
    metrics = Metrics(accounts={"vidicenter": [ALICE]})
    heard: list[tuple[str, ...]] = []
    pauses = Pauses(
        metrics,
        on_pause=lambda who, why: heard.append(("pause", who, why)),
        on_resume=lambda who: heard.append(("resume", who)),
    )
    pauses.pause(Vendor.vidicenter, ALICE, AuthError("refused"), 0)

    assert pauses.remaining(Vendor.vidicenter, ALICE) == 0
    assert heard == [
        ("pause", f"vidicenter:{ALICE}", "refused"),
        ("resume", f"vidicenter:{ALICE}"),
    ]
    assert pauses.reasons() == {}
    assert sample(metrics, "ingest_vendor_paused", ALICE) == 0
    assert sample(metrics, "ingest_vendor_pauses_total", ALICE) == 1
