"""handled LINE webhook events

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "line_events",
        sa.Column("webhook_event_id", sa.String(length=64), nullable=False),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("webhook_event_id"),
    )
    with op.batch_alter_table("line_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_line_events_handled_at"), ["handled_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("line_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_line_events_handled_at"))
    op.drop_table("line_events")
