"""answer events: what came of each question and the resident's rating (no text)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "answer_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ward", sa.String(length=16), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("entry", sa.String(length=128), nullable=True),
        sa.Column("topic", sa.String(length=128), nullable=True),
        sa.Column("conversation", sa.String(length=64), nullable=True),
        sa.Column("helpful", sa.Boolean(), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("answer_events", schema=None) as batch_op:
        for column in ("at", "ward", "entry", "conversation"):
            batch_op.create_index(batch_op.f(f"ix_answer_events_{column}"), [column], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("answer_events", schema=None) as batch_op:
        for column in ("conversation", "entry", "ward", "at"):
            batch_op.drop_index(batch_op.f(f"ix_answer_events_{column}"))
    op.drop_table("answer_events")
