"""Background tasks stop when asked, even when a cancellation meets a wake-up."""

import asyncio

from services.runtime import Background, wait_or_timeout


async def test_a_cancellation_as_the_event_is_set_is_raised_not_swallowed():
    for _ in range(3):
        event = asyncio.Event()
        waiting = asyncio.create_task(wait_or_timeout(event, 10))
        await asyncio.sleep(0)  # parked on the event
        event.set()
        waiting.cancel()  # in the same turn of the loop: asyncio.wait_for on 3.11 returns here
        try:
            await waiting
        except asyncio.CancelledError:
            continue
        raise AssertionError("the cancellation was swallowed")


async def test_it_says_whether_the_event_came_in_time():
    event = asyncio.Event()
    assert await wait_or_timeout(event, 0.01) is False
    event.set()
    assert await wait_or_timeout(event, 0.01) is True


class Stubborn(Background):
    """A loop whose first cancellation is lost, as a swallowing library would lose it."""

    task_name = "stubborn"

    def __init__(self):
        self.lost = 0

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if self.lost == 0:
                    self.lost += 1
                    continue
                raise


async def test_stop_asks_again_until_the_task_has_ended():
    stubborn = Stubborn()
    await stubborn.start()
    await asyncio.sleep(0)
    await asyncio.wait_for(stubborn.stop(), 5)
    assert stubborn.lost == 1 and not stubborn.alive
