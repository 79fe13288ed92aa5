"""deployment contents: every change a deployment holds with its commit time, kept by triggers

A DORA read needs, for each deployment of a window, the changes it holds (the linked commits and the
commits pushed with a linked head) and their commit times. Read from `deployment_changes` and
`changes` that is several index seeks per change; `deployment_contents` holds the answer clustered
by deployment (SQLite: WITHOUT ROWID). Triggers on both source tables keep it, so every writer (the
collector, a replay, a bulk load) keeps it without knowing. On PostgreSQL the triggers take a
transaction advisory lock first, so that a link and a change written by two concurrent transactions
cannot each miss the other (READ COMMITTED: each statement after the lock sees what the other
committed); writers of links and changes are serialised from their first such row to their commit.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 04:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The advisory lock (two-key form: the one-key locks of collector.db do not overlap) that serialises
# the triggers' work on PostgreSQL. One lock for all keys: a lock per key would fill PostgreSQL's lock
# table in a batch of thousands of changes.
LOCK = "pg_advisory_xact_lock(7301, 0)"
_INSERT = "INSERT {ignore}INTO deployment_contents (deployment_id, change_id, committed_at) "
# Each statement is driven by one index (an OR of two columns can make PostgreSQL scan the table).
_LINKED = [  # the rows a new link (deployment D, change X) justifies: X, and the commits pushed with X
    _INSERT + "SELECT NEW.deployment_id, c.id, coalesce(c.committed_at, c.merged_at) FROM changes c "
    "WHERE c.id = NEW.change_id{conflict}",
    _INSERT + "SELECT NEW.deployment_id, c.id, coalesce(c.committed_at, c.merged_at) FROM changes c "
    "WHERE c.pushed_head = NEW.change_id{conflict}",
]
_UNLINKED = [  # after a link (D, X) goes: the rows it justified that no other link of D justifies
    "DELETE FROM deployment_contents WHERE deployment_id = OLD.deployment_id "
    "AND change_id IN (SELECT c.id FROM changes c WHERE c.id = OLD.change_id "
    "UNION ALL SELECT c.id FROM changes c WHERE c.pushed_head = OLD.change_id) "
    "AND NOT EXISTS (SELECT 1 FROM deployment_changes dc WHERE dc.deployment_id = OLD.deployment_id "
    "AND dc.change_id IN (SELECT c.id FROM changes c WHERE c.id = deployment_contents.change_id "
    "UNION ALL SELECT c.pushed_head FROM changes c WHERE c.id = deployment_contents.change_id))",
]
_CHANGED = [  # the rows a (new or changed) commit has: a link to it, or a link to the head it was pushed with
    _INSERT + "SELECT dc.deployment_id, NEW.id, coalesce(NEW.committed_at, NEW.merged_at) "
    "FROM deployment_changes dc WHERE dc.change_id = NEW.id{conflict}",
    _INSERT + "SELECT dc.deployment_id, NEW.id, coalesce(NEW.committed_at, NEW.merged_at) "
    "FROM deployment_changes dc WHERE dc.change_id = NEW.pushed_head{conflict}",
]
_GONE = ["DELETE FROM deployment_contents WHERE change_id = OLD.id"]
_CHANGED_WHEN = (
    "OLD.committed_at IS DISTINCT FROM NEW.committed_at OR OLD.merged_at IS DISTINCT FROM "
    "NEW.merged_at OR OLD.pushed_head IS DISTINCT FROM NEW.pushed_head"
)
_RELINKED_WHEN = "OLD.deployment_id IS DISTINCT FROM NEW.deployment_id OR OLD.change_id IS DISTINCT FROM NEW.change_id"


def _body(statements: list[str], dialect: str) -> str:
    conflict = " ON CONFLICT DO NOTHING" if dialect == "postgresql" else ""
    ignore = "" if dialect == "postgresql" else "OR IGNORE "
    return " ".join(s.format(conflict=conflict, ignore=ignore) + ";" for s in statements)


def _sqlite_triggers() -> list[str]:
    changed, relinked = (w.replace("IS DISTINCT FROM", "IS NOT") for w in (_CHANGED_WHEN, _RELINKED_WHEN))
    trigger = "CREATE TRIGGER tr_{name} AFTER {event} BEGIN {body} END"
    return [
        trigger.format(name=name, event=event, body=_body(body, "sqlite"))
        for name, event, body in (
            ("deployment_changes_contents_insert", "INSERT ON deployment_changes", _LINKED),
            ("deployment_changes_contents_delete", "DELETE ON deployment_changes", _UNLINKED),
            (
                "deployment_changes_contents_update",
                f"UPDATE OF deployment_id, change_id ON deployment_changes WHEN {relinked}",
                _UNLINKED + _LINKED,
            ),
            ("changes_contents_insert", "INSERT ON changes", _CHANGED),
            ("changes_contents_delete", "DELETE ON changes", _GONE),
            (
                "changes_contents_update",
                f"UPDATE OF committed_at, merged_at, pushed_head ON changes WHEN {changed}",
                _GONE + _CHANGED,
            ),
        )
    ]


def _postgresql_triggers() -> list[str]:
    function = """CREATE FUNCTION gw_{table}_contents() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM {lock};
            IF TG_OP IN ('DELETE', 'UPDATE') THEN {before} END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN {after} END IF;
            RETURN NULL;
        END $$"""
    return [
        function.format(
            table="deployment_changes",
            lock=LOCK,
            before=_body(_UNLINKED, "postgresql"),
            after=_body(_LINKED, "postgresql"),
        ),
        function.format(
            table="changes", lock=LOCK, before=_body(_GONE, "postgresql"), after=_body(_CHANGED, "postgresql")
        ),
        "CREATE TRIGGER tr_deployment_changes_contents AFTER INSERT OR DELETE ON deployment_changes "
        "FOR EACH ROW EXECUTE FUNCTION gw_deployment_changes_contents()",
        f"CREATE TRIGGER tr_deployment_changes_contents_update AFTER UPDATE OF deployment_id, change_id "
        f"ON deployment_changes FOR EACH ROW WHEN ({_RELINKED_WHEN}) EXECUTE FUNCTION gw_deployment_changes_contents()",
        "CREATE TRIGGER tr_changes_contents AFTER INSERT OR DELETE ON changes "
        "FOR EACH ROW EXECUTE FUNCTION gw_changes_contents()",
        f"CREATE TRIGGER tr_changes_contents_update AFTER UPDATE OF committed_at, merged_at, pushed_head ON changes "
        f"FOR EACH ROW WHEN ({_CHANGED_WHEN}) EXECUTE FUNCTION gw_changes_contents()",
    ]


def upgrade() -> None:
    op.create_table(
        "deployment_contents",
        sa.Column("deployment_id", sa.String(length=255), nullable=False),
        sa.Column("change_id", sa.String(length=255), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("deployment_id", "change_id", name=op.f("pk_deployment_contents")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_deployment_contents_change_id", "deployment_contents", ["change_id", "deployment_id"])
    postgresql = op.get_bind().dialect.name == "postgresql"
    held = (
        "SELECT dc.deployment_id, c.id, coalesce(c.committed_at, c.merged_at) "
        "FROM deployment_changes dc JOIN changes c ON c.{} = dc.change_id"
    )
    op.execute(
        "INSERT INTO deployment_contents (deployment_id, change_id, committed_at) "
        f"{held.format('id')} UNION {held.format('pushed_head')}"
    )
    for statement in _postgresql_triggers() if postgresql else _sqlite_triggers():
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER tr_deployment_changes_contents ON deployment_changes")
        op.execute("DROP TRIGGER tr_deployment_changes_contents_update ON deployment_changes")
        op.execute("DROP TRIGGER tr_changes_contents ON changes")
        op.execute("DROP TRIGGER tr_changes_contents_update ON changes")
        op.execute("DROP FUNCTION gw_deployment_changes_contents()")
        op.execute("DROP FUNCTION gw_changes_contents()")
    else:
        for name in (
            "deployment_changes_contents_insert",
            "deployment_changes_contents_delete",
            "deployment_changes_contents_update",
            "changes_contents_insert",
            "changes_contents_delete",
            "changes_contents_update",
        ):
            op.execute(f"DROP TRIGGER tr_{name}")
    op.drop_index("ix_deployment_contents_change_id", table_name="deployment_contents")
    op.drop_table("deployment_contents")
