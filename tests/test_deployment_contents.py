"""`deployment_contents`, kept by triggers from `deployment_changes` and `changes`, equals its
definition (each deployment's linked commits and the commits pushed with a linked head, with their
commit time, else merge time) after any order of writes, updates and deletes; a migrated store is
backfilled; and on PostgreSQL two transactions that each write one half of a row do not miss it."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, text, update

from collector import projections
from collector.db import _alembic_config, bulk_insert, create_store_engine, upgrade, write_transaction
from collector.models import changes, deployment_changes, deployment_contents
from collector.sources.base import Update
from tests.conftest import POSTGRES_URL, _drop_schema, _postgres_store_url

BASE = datetime(2024, 3, 1, tzinfo=UTC)


def _definition(conn) -> set[tuple]:
    """The contents computed from the two tables, in Python."""
    links = conn.execute(select(deployment_changes.c.deployment_id, deployment_changes.c.change_id)).all()
    rows = conn.execute(select(changes.c.id, changes.c.committed_at, changes.c.merged_at, changes.c.pushed_head)).all()
    by_id = {r.id: r for r in rows}
    pushed: dict[str, list] = {}
    for r in rows:
        if r.pushed_head is not None:
            pushed.setdefault(r.pushed_head, []).append(r)
    out = set()
    for deployment, change in links:
        for r in ([by_id[change]] if change in by_id else []) + pushed.get(change, []):
            out.add((deployment, r.id, r.committed_at if r.committed_at is not None else r.merged_at))
    return out


def _stored(conn) -> set[tuple]:
    x = deployment_contents
    return set(conn.execute(select(x.c.deployment_id, x.c.change_id, x.c.committed_at)).all())


def _updates(order: random.Random) -> list[Update]:
    """Links, commits (some pushed with a head, some known only by merge time) and later events
    that move a commit's times or head: the same updates, in the order `order` shuffles them to."""
    rng = random.Random(1)
    shas = [f"sha-{k:02d}" for k in range(30)] + ['it\'s, "odd"\n']
    ups = []
    for k, sha in enumerate(shas):
        values = {"service": "api"}
        if k % 4:
            values["committed_at"] = BASE + timedelta(hours=k)
        else:
            values["merged_at"] = BASE + timedelta(hours=k, minutes=5)
        if k % 3 == 0 and k:
            values["pushed_head"] = shas[k - 1]
        ups.append(Update("changes", sha, values))
        if k % 5 == 0:  # a later event with an earlier commit time, and another head
            ups.append(Update("changes", sha, {"committed_at": BASE - timedelta(minutes=k)}))
        if k % 7 == 0:
            ups.append(Update("changes", sha, {"pushed_head": "sha-00"}))
    for d in range(12):
        for sha in rng.sample(shas, 4):
            ups.append(Update("deployment_changes", f"d{d}|{sha}", {"deployment_id": f"d{d}", "change_id": sha}))
    ups.append(Update("deployment_changes", "d0|missing", {"deployment_id": "d0", "change_id": "not-a-commit"}))
    order.shuffle(ups)
    return ups


def test_contents_follow_writes_in_any_order(engine):
    rng = random.Random(7)
    results = []
    for round_ in range(4):
        with write_transaction(engine) as conn:
            conn.execute(delete(deployment_changes))
            conn.execute(delete(changes))
            assert _stored(conn) == set()  # the delete triggers clear what the rows justified
        ups = _updates(random.Random(round_))
        # Applied in several transactions, as batches of ingest would be.
        for start in range(0, len(ups), 17):
            with write_transaction(engine) as conn:
                projections.apply(conn, ups[start : start + 17])
        with engine.connect() as conn:
            stored, defined = _stored(conn), _definition(conn)
        assert stored == defined and len(stored) > 40
        assert any(r[1] == 'it\'s, "odd"\n' for r in stored)
        assert any(r[2] == BASE - timedelta(minutes=15) for r in stored)  # the moved commit time
        results.append(stored)
    assert all(r == results[0] for r in results)  # every order gives the same rows

    with write_transaction(engine) as conn:  # deletes and relinks keep the definition too
        links = conn.execute(select(deployment_changes.c.id)).scalars().all()
        removed = rng.sample(links, 10)
        for key in removed:
            conn.execute(delete(deployment_changes).where(deployment_changes.c.id == key))
        conn.execute(delete(changes).where(changes.c.id.in_(["sha-03", "sha-06"])))
        moved = next(k for k in links if k not in removed and k.split("|")[1].startswith("sha-1"))
        conn.execute(update(deployment_changes).where(deployment_changes.c.id == moved).values(deployment_id="d-moved"))
        conn.execute(update(changes).where(changes.c.id == "sha-01").values(pushed_head="sha-02"))
        conn.execute(update(changes).where(changes.c.id == "sha-04").values(merged_at=None, committed_at=None))
    with engine.connect() as conn:
        assert _stored(conn) == _definition(conn)
        assert {r[0] for r in _stored(conn)} >= {"d-moved"}


def test_a_deployment_holds_a_commit_once_however_it_is_reached(engine):
    with write_transaction(engine) as conn:
        bulk_insert(
            conn,
            changes,
            [
                {"id": "head", "service": "api", "committed_at": BASE, "pushed_head": "head"},
                {"id": "c1", "service": "api", "committed_at": BASE - timedelta(hours=1), "pushed_head": "head"},
            ],
        )
        bulk_insert(
            conn,
            deployment_changes,
            [
                {"id": "d|head", "deployment_id": "d", "change_id": "head"},
                {"id": "d|c1", "deployment_id": "d", "change_id": "c1"},
            ],
        )
    with engine.connect() as conn:
        assert sorted(_stored(conn)) == [("d", "c1", BASE - timedelta(hours=1)), ("d", "head", BASE)]
    with write_transaction(engine) as conn:  # c1 is still held through the head after its own link goes
        conn.execute(delete(deployment_changes).where(deployment_changes.c.id == "d|c1"))
    with engine.connect() as conn:
        assert sorted(r[1] for r in _stored(conn)) == ["c1", "head"]
    with write_transaction(engine) as conn:
        conn.execute(delete(deployment_changes).where(deployment_changes.c.id == "d|head"))
    with engine.connect() as conn:
        assert _stored(conn) == set()


def test_the_migration_backfills_a_store_written_before_it(store_url):
    """A store at revision 0005 with links and commits gets its contents when upgraded."""
    from alembic import command

    engine = create_store_engine(store_url)
    try:
        with engine.connect() as conn:
            command.upgrade(_alembic_config(conn), "0005")
            conn.commit()
        with write_transaction(engine) as conn:
            bulk_insert(
                conn,
                changes,
                [
                    {
                        "id": f"c{k}",
                        "service": "api",
                        "committed_at": None if k == 2 else BASE + timedelta(hours=k),
                        "merged_at": BASE + timedelta(days=1),
                        "pushed_head": "c0" if k in (3, 4) else None,
                    }
                    for k in range(6)
                ],
            )
            bulk_insert(
                conn,
                deployment_changes,
                [
                    {"id": f"d{k}|c{j}", "deployment_id": f"d{k}", "change_id": f"c{j}"}
                    for k, j in ((0, 0), (0, 3), (1, 1), (1, 2), (2, 5), (2, 9))
                ],
            )
        upgrade(engine)
        with engine.connect() as conn:
            stored = _stored(conn)
            assert stored == _definition(conn)
        assert ("d0", "c4", BASE + timedelta(hours=4)) in stored  # pushed with the linked head
        assert ("d1", "c2", BASE + timedelta(days=1)) in stored  # known by its merge time
        assert len(stored) == 6  # d0: c0, c3, c4; d1: c1, c2; d2: c5 (c9 is unknown)
    finally:
        engine.dispose()


@pytest.fixture
def postgres_engine():
    """A migrated store in a PostgreSQL schema of its own."""
    if not POSTGRES_URL:
        pytest.skip("GATEWATCH_TEST_POSTGRES_URL is not set")
    url, schema = _postgres_store_url()
    engine = create_store_engine(url)
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        _drop_schema(schema)


@pytest.mark.postgres
@pytest.mark.parametrize("first", ["link", "change"])
def test_concurrent_halves_of_a_row_are_not_lost_on_postgresql(postgres_engine, first):
    """One transaction links a deployment to a head while another stores a commit pushed with that
    head; neither sees the other's uncommitted row, so without the triggers' lock both would miss
    (deployment, commit). (SQLite has one writer at a time.)"""
    engine = postgres_engine
    link = {"id": "d|head", "deployment_id": "d", "change_id": "head"}
    commit = {"id": "c1", "service": "api", "committed_at": BASE, "pushed_head": "head"}
    halves = {"link": (deployment_changes, [link]), "change": (changes, [commit])}
    second = "change" if first == "link" else "link"
    done = threading.Event()
    errors: list[BaseException] = []

    def write_second() -> None:
        try:
            with write_transaction(engine) as conn:
                bulk_insert(conn, *halves[second])
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    with write_transaction(engine) as conn:
        bulk_insert(conn, *halves[first])
        thread = threading.Thread(target=write_second)
        thread.start()
        blocked = not done.wait(1.0)  # the second waits for the first's lock
    thread.join(30)
    assert not errors and blocked
    with engine.connect() as conn:
        assert _stored(conn) == {("d", "c1", BASE)} == _definition(conn)
        assert conn.execute(text("SELECT count(*) FROM deployment_contents")).scalar_one() == 1
