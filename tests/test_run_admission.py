"""run/admission.py and nodes/models/call_slots.py: how a run keeps its call slots busy."""

from __future__ import annotations

import asyncio


async def test_each_concurrency_limit_gets_its_own_bound():
    from raer.nodes.models.call_slots import call_slots

    first, second = call_slots(1), call_slots(5)
    assert first is not second and second.limit == 5
    assert call_slots(5) is second


async def test_a_query_call_waits_before_product_calls_and_cancelled_waiters_give_way():
    """Slots go to a query's first calls before queued product calls (they unlock the next
    wave of products), first come first served within a priority; a caller cancelled while
    waiting neither holds nor loses a slot."""
    from raer.nodes.models.call_slots import PRODUCT_CALL, QUERY_CALL, CallSlots

    slots, order = CallSlots(1), []
    gate = asyncio.Event()

    async def call(name, priority):
        async with slots.slot(priority):
            order.append(name)
            if name == "first":
                await gate.wait()

    first = asyncio.create_task(call("first", PRODUCT_CALL))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(call(name, priority)) for name, priority in (
        ("product 1", PRODUCT_CALL), ("cancelled", QUERY_CALL), ("product 2", PRODUCT_CALL),
        ("query", QUERY_CALL))]
    await asyncio.sleep(0)
    assert slots.in_flight == 1 and slots.waiting == 4
    tasks[1].cancel()
    await asyncio.sleep(0)
    assert slots.waiting == 3
    gate.set()
    await asyncio.gather(first, tasks[0], tasks[2], tasks[3])
    assert order == ["first", "query", "product 1", "product 2"]
    assert slots.in_flight == 0 and slots.waiting == 0


async def test_admission_starts_queries_while_slots_need_work_and_pairs_fit():
    """Queries start while the slots have little waiting and the started queries' open pairs
    fit the bound; a finished pair makes room; a query larger than the bound starts alone."""
    from raer.nodes.models.call_slots import CallSlots
    from raer.run.admission import Admission

    slots = CallSlots(4)
    admission = Admission(queries=10, pairs=40, slots=slots)
    first = await admission.start(20)
    second = await admission.start(20)
    third = asyncio.create_task(admission.start(20))
    await asyncio.sleep(0.12)
    assert not third.done() and admission.open_pairs == 40  # 60 would not fit
    for _ in range(20):
        first.finished()
    assert (await asyncio.wait_for(third, 1)).open == 20
    assert admission.open_pairs == 40 and admission.running == 3

    held = [slots.slot() for _ in range(8)]  # 4 in flight, 4 waiting: demand is high
    entered = [asyncio.create_task(h.__aenter__()) for h in held]
    await asyncio.sleep(0)
    assert slots.waiting == 4
    first.done()
    for _ in range(10):
        second.finished()
    fourth = asyncio.create_task(admission.start(1))
    await asyncio.sleep(0.12)
    assert not fourth.done()  # the pairs fit, but calls already wait for every slot
    for task in entered[:4]:
        await task
    for h in held[:4]:
        await h.__aexit__(None, None, None)  # the waiting calls get the slots
    await asyncio.wait_for(fourth, 1)
    for task, h in zip(entered[4:], held[4:], strict=True):
        await task
        await h.__aexit__(None, None, None)

    alone = Admission(queries=10, pairs=5, slots=None)
    big = await alone.start(50)  # larger than the bound: starts, but alone
    small = asyncio.create_task(alone.start(1))
    await asyncio.sleep(0.12)
    assert not small.done()
    big.done()
    await asyncio.wait_for(small, 1)
