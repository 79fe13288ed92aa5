"""deployment contents: every change a deployment holds with its commit time, kept by triggers

A DORA read needs, for each deployment of a window, the changes it holds (the linked commits and the
commits pushed with a linked head) and their commit times. Read from `deployment_changes` and
`changes` that is several index seeks per change; `deployment_contents` holds the answer clustered
by deployment (SQLite: WITHOUT ROWID). Triggers on both source tables keep it, so every writer (the
collector, a replay, a bulk load) keeps it without knowing. On PostgreSQL the triggers take a
transaction advisory lock on the change id a row depends on, so that a link and a change written by
two concurrent transactions cannot each miss the other (READ COMMITTED: each statement after the
lock sees what the other committed).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 04:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# The first key of the two-key advisory locks (the one-key locks of collector.db do not overlap).
LOCK_CLASS = 7301

# The rows one link (deployment D, change X) justifies: X itself and the commits pushed with X.
_LINK_ROWS = ("SELECT {d}, c.id, coalesce(c.committed_at, c.merged_at) FROM changes c "
              "WHERE c.id = {x} OR c.pushed_head = {x}")
# The rows one change justifies: a link to it, or a link to the head it was pushed with.
_CHANGE_ROWS = ("SELECT DISTINCT dc.deployment_id, {c}.id, coalesce({c}.committed_at, {c}.merged_at) "
                "FROM deployment_changes dc WHERE dc.change_id = {c}.id OR dc.change_id = {c}.pushed_head")
# After a link (D, X) goes: the rows it justified that no other link of D justifies.
_UNLINKED = ("DELETE FROM deployment_contents WHERE deployment_id = OLD.deployment_id "
             "AND change_id IN (SELECT c.id FROM changes c WHERE c.id = OLD.change_id OR c.pushed_head = OLD.change_id) "
             "AND NOT EXISTS (SELECT 1 FROM deployment_changes dc JOIN changes c ON c.id = deployment_contents.change_id "
             "WHERE dc.deployment_id = OLD.deployment_id AND (dc.change_id = c.id OR dc.change_id = c.pushed_head))")
_CHANGED = ("OLD.committed_at IS DISTINCT FROM NEW.committed_at OR OLD.merged_at IS DISTINCT FROM NEW.merged_at "
            "OR OLD.pushed_head IS DISTINCT FROM NEW.pushed_head")
_RELINKED = "OLD.deployment_id IS DISTINCT FROM NEW.deployment_id OR OLD.change_id IS DISTINCT FROM NEW.change_id"


def _sqlite_triggers() -> list[str]:
    link = _LINK_ROWS.format(d="NEW.deployment_id", x="NEW.change_id")
    change = _CHANGE_ROWS.format(c="NEW")
    changed, relinked = (s.replace("IS DISTINCT FROM", "IS NOT") for s in (_CHANGED, _RELINKED))
    insert = "INSERT OR IGNORE INTO deployment_contents (deployment_id, change_id, committed_at)"
    return [
        f"CREATE TRIGGER tr_deployment_changes_contents_insert AFTER INSERT ON deployment_changes "
        f"BEGIN {insert} {link}; END",
        f"CREATE TRIGGER tr_deployment_changes_contents_delete AFTER DELETE ON deployment_changes "
        f"BEGIN {_UNLINKED}; END",
        f"CREATE TRIGGER tr_deployment_changes_contents_update AFTER UPDATE OF deployment_id, change_id "
        f"ON deployment_changes WHEN {relinked} BEGIN {_UNLINKED}; {insert} {link}; END",
        f"CREATE TRIGGER tr_changes_contents_insert AFTER INSERT ON changes BEGIN {insert} {change}; END",
        "CREATE TRIGGER tr_changes_contents_delete AFTER DELETE ON changes "
        "BEGIN DELETE FROM deployment_contents WHERE change_id = OLD.id; END",
        f"CREATE TRIGGER tr_changes_contents_update AFTER UPDATE OF committed_at, merged_at, pushed_head ON changes "
        f"WHEN {changed} BEGIN DELETE FROM deployment_contents WHERE change_id = OLD.id; {insert} {change}; END",
    ]


def _postgresql_triggers() -> list[str]:
    lock = f"PERFORM pg_advisory_xact_lock({LOCK_CLASS}, hashtext({{}}));"
    insert = "INSERT INTO deployment_contents (deployment_id, change_id, committed_at)"
    link = _LINK_ROWS.format(d="NEW.deployment_id", x="NEW.change_id")
    change = _CHANGE_ROWS.format(c="NEW")
    return [
        f"""CREATE FUNCTION gw_deployment_changes_contents() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('DELETE', 'UPDATE') THEN
                {lock.format("OLD.change_id")}
                {_UNLINKED};
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                {lock.format("NEW.change_id")}
                {insert} {link} ON CONFLICT DO NOTHING;
            END IF;
            RETURN NULL;
        END $$""",
        f"""CREATE FUNCTION gw_changes_contents() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('DELETE', 'UPDATE') THEN
                {lock.format("OLD.id")}
                IF OLD.pushed_head IS NOT NULL THEN {lock.format("OLD.pushed_head")} END IF;
                DELETE FROM deployment_contents WHERE change_id = OLD.id;
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                {lock.format("NEW.id")}
                IF NEW.pushed_head IS NOT NULL THEN {lock.format("NEW.pushed_head")} END IF;
                {insert} {change} ON CONFLICT DO NOTHING;
            END IF;
            RETURN NULL;
        END $$""",
        "CREATE TRIGGER tr_deployment_changes_contents AFTER INSERT OR DELETE ON deployment_changes "
        "FOR EACH ROW EXECUTE FUNCTION gw_deployment_changes_contents()",
        f"CREATE TRIGGER tr_deployment_changes_contents_update AFTER UPDATE OF deployment_id, change_id "
        f"ON deployment_changes FOR EACH ROW WHEN ({_RELINKED}) EXECUTE FUNCTION gw_deployment_changes_contents()",
        "CREATE TRIGGER tr_changes_contents AFTER INSERT OR DELETE ON changes "
        "FOR EACH ROW EXECUTE FUNCTION gw_changes_contents()",
        f"CREATE TRIGGER tr_changes_contents_update AFTER UPDATE OF committed_at, merged_at, pushed_head ON changes "
        f"FOR EACH ROW WHEN ({_CHANGED}) EXECUTE FUNCTION gw_changes_contents()",
    ]


def upgrade() -> None:
    op.create_table(
        'deployment_contents',
        sa.Column('deployment_id', sa.String(length=255), nullable=False),
        sa.Column('change_id', sa.String(length=255), nullable=False),
        sa.Column('committed_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('deployment_id', 'change_id', name=op.f('pk_deployment_contents')),
        sqlite_with_rowid=False,
    )
    op.create_index('ix_deployment_contents_change_id', 'deployment_contents', ['change_id', 'deployment_id'])
    postgresql = op.get_bind().dialect.name == "postgresql"
    held = ("SELECT dc.deployment_id, c.id, coalesce(c.committed_at, c.merged_at) "
            "FROM deployment_changes dc JOIN changes c ON c.{} = dc.change_id")
    op.execute("INSERT INTO deployment_contents (deployment_id, change_id, committed_at) "
               f"{held.format('id')} UNION {held.format('pushed_head')}")
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
        for name in ("deployment_changes_contents_insert", "deployment_changes_contents_delete",
                     "deployment_changes_contents_update", "changes_contents_insert", "changes_contents_delete",
                     "changes_contents_update"):
            op.execute(f"DROP TRIGGER tr_{name}")
    op.drop_index('ix_deployment_contents_change_id', table_name='deployment_contents')
    op.drop_table('deployment_contents')
