"""Gate decisions are stored once per key; racing processes on one database make one decision."""

from __future__ import annotations

import multiprocessing

from collector.db import create_store_engine
from collector.gate_decisions import get_decision, list_decisions, record_actions, record_decision


def test_first_writer_wins_and_retries_get_the_stored_decision(engine):
    first = record_decision(
        engine,
        "job-1",
        "checkout-prod",
        "rollback",
        [{"name": "canary", "status": "fail"}],
        ["canary failed"],
        deployment_id="d1",
    )
    assert first.first and first.decision == "rollback"
    again = record_decision(engine, "job-1", "checkout-prod", "promote", [], ["a different answer"])
    assert not again.first and again.decision == "rollback" and again.id == first.id
    assert again.reasons == ["canary failed"] and again.to_dict()["replayed"] is True
    record_actions(engine, first.id, [{"type": "webhook", "outcome": "ok"}])
    assert get_decision(engine, decision_id=first.id).actions == [{"type": "webhook", "outcome": "ok"}]
    assert list(list_decisions(engine)["key"]) == ["job-1"]


def _decide(url: str, decision: str, barrier, out) -> None:
    engine = create_store_engine(url)
    barrier.wait()
    stored = record_decision(engine, "race-key", "g", decision, [], [decision])
    out.put((decision, stored.decision, stored.first))
    engine.dispose()


def test_two_processes_racing_on_one_key_make_one_decision(engine, store_url):
    ctx = multiprocessing.get_context("spawn")
    for _round in range(3):
        barrier, out = ctx.Barrier(2), ctx.Queue()
        key_url = store_url
        procs = [ctx.Process(target=_decide, args=(key_url, d, barrier, out)) for d in ("promote", "rollback")]
        for p in procs:
            p.start()
        results = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(60)
        assert sorted(r[2] for r in results) == [False, True]  # exactly one made the decision
        assert len({r[1] for r in results}) == 1  # and both report the same one
        from sqlalchemy import delete

        from collector.db import write_transaction
        from collector.models import gate_decisions

        with write_transaction(engine) as conn:
            conn.execute(delete(gate_decisions))


def test_a_hold_is_asked_again_as_the_next_attempt_and_a_final_decision_stays(engine):
    held = record_decision(engine, "job-2", "g", "hold", [], ["canary still collecting"])
    assert held.attempt == 1 and get_decision(engine, key="job-2").decision == "hold"
    second = record_decision(engine, "job-2", "g", "promote", [], ["every check passed"], attempt=2)
    assert second.first and second.attempt == 2 and second.id != held.id
    assert get_decision(engine, key="job-2").id == second.id  # the latest attempt is the key's decision
    assert get_decision(engine, decision_id=held.id).decision == "hold"  # the audit log keeps both
    racing = record_decision(engine, "job-2", "g", "rollback", [], ["late writer"], attempt=2)
    assert not racing.first and racing.decision == "promote"
