import anyio
import asyncpg
import pytest

from ingest.budget import CallBudget


class Waited(Exception):
    pass


async def test_calls_beyond_the_minute_budget_wait_for_the_window(pool: asyncpg.Pool) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        raise Waited

    reported: list[tuple[str, float]] = []
    one = CallBudget(pool, "acct", per_minute=3, at_once=2, sleep=sleep)
    other = CallBudget(  # another process
        pool, "acct", per_minute=3, at_once=2, sleep=sleep, on_wait=lambda *w: reported.append(w)
    )
    for budget in (one, one, other):
        async with budget.call():
            pass
    with pytest.raises(Waited):
        async with other.call():
            pass
    assert len(waits) == 1 and 55 < waits[0] <= 62.1
    assert reported == [("acct", waits[0])]  # each wait is reported, for the metric


async def test_calls_in_flight_in_another_process_count_against_at_once(
    pool: asyncpg.Pool,
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        raise Waited

    one = CallBudget(pool, "acct", per_minute=50, at_once=2, sleep=sleep)
    other = CallBudget(pool, "acct", per_minute=50, at_once=2, sleep=sleep)
    async with one.call(), one.call():
        with pytest.raises(Waited):
            async with other.call():
                pass
    assert waits and waits[0] < 1
    async with other.call():  # both finished: room again
        pass


async def test_accounts_have_separate_budgets(pool: asyncpg.Pool) -> None:
    a = CallBudget(pool, "a", per_minute=1, at_once=1)
    b = CallBudget(pool, "b", per_minute=1, at_once=1)
    async with a.call():
        pass
    async with b.call():
        pass
    assert await pool.fetchval("SELECT count(*) FROM ingest.vendor_calls") == 2


async def _sleep_refused(_seconds: float) -> None:
    raise Waited


async def test_a_call_that_timed_out_keeps_its_place_stale_s_longer(pool: asyncpg.Pool) -> None:
    # the vendor may still be serving a call we gave up on: a new one must not open a
    # connection beside it until the vendor could have finished with it
    budget = CallBudget(pool, "acct", per_minute=50, at_once=1, stale_s=30, sleep=_sleep_refused)
    with pytest.raises(TimeoutError):
        async with budget.call():
            raise TimeoutError
    with pytest.raises(Waited):
        async with budget.call():
            pass
    held_for = await pool.fetchval(
        "SELECT extract(epoch FROM finished_at - clock_timestamp()) FROM ingest.vendor_calls"
    )
    assert 29 < held_for <= 30
    # once the hold is over, the place is free again
    await pool.execute("UPDATE ingest.vendor_calls SET finished_at = clock_timestamp()")
    async with budget.call():
        pass


async def test_a_cancelled_call_keeps_its_place_too(pool: asyncpg.Pool) -> None:
    budget = CallBudget(pool, "acct", per_minute=50, at_once=1, stale_s=30, sleep=_sleep_refused)
    with anyio.CancelScope() as scope:
        async with budget.call():
            scope.cancel()
            await anyio.sleep(1)
    with pytest.raises(Waited):
        async with budget.call():
            pass


async def test_a_call_whose_connection_failed_gives_its_place_back_at_once(
    pool: asyncpg.Pool,
) -> None:
    # the vendor closed the connection (or it never opened): it is not serving the call
    budget = CallBudget(pool, "acct", per_minute=50, at_once=1, stale_s=30, sleep=_sleep_refused)
    with pytest.raises(ConnectionResetError):
        async with budget.call():
            raise ConnectionResetError
    async with budget.call():
        pass


async def _place_held_for(pool: asyncpg.Pool) -> float:
    held: float = await pool.fetchval(
        "SELECT extract(epoch FROM max(finished_at) - clock_timestamp()) FROM ingest.vendor_calls"
    )
    return held


async def test_a_call_holds_its_place_as_a_lease_that_its_progress_renews(
    pool: asyncpg.Pool,
) -> None:
    # an export's answer may take minutes to arrive: the call must keep its connection
    # place while it comes, yet a worker that dies mid-call must not hold it for ever
    now = [0.0]
    budget = CallBudget(
        pool,
        "acct",
        per_minute=50,
        at_once=1,
        stale_s=30,
        sleep=_sleep_refused,
        clock=lambda: now[0],
    )
    other = CallBudget(pool, "acct", per_minute=50, at_once=1, stale_s=30, sleep=_sleep_refused)
    async with budget.call() as place:
        # from its start, the place is leased for a third more than stale_s
        assert 39 < await _place_held_for(pool) <= 40
        await pool.execute(
            "UPDATE ingest.vendor_calls SET finished_at = clock_timestamp() + interval '1 second'"
        )
        await place.keep()  # progress within a third of the lease: no write
        assert await _place_held_for(pool) <= 1
        now[0] += 10.01
        await place.keep()  # a third is gone: the lease runs again from now
        assert 39 < await _place_held_for(pool) <= 40
        with pytest.raises(Waited):  # another process sees the place taken
            async with other.call():
                pass
    async with other.call():  # the call ended: its place is free at once
        pass
