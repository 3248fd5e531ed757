"""knowledge drafts and revisions: the editors' review loop and the history of published changes

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "knowledge_drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("entry_id", sa.String(length=128), nullable=True),
        sa.Column("base", sa.Text(), nullable=False),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reviewer", sa.String(length=64), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("knowledge_drafts", schema=None) as batch_op:
        for column in ("entry_id", "status", "issue_id"):
            batch_op.create_index(batch_op.f(f"ix_knowledge_drafts_{column}"), [column], unique=False)
    op.create_table(
        "knowledge_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("file", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("entry_id", sa.String(length=128), nullable=False),
        sa.Column("before", sa.Text(), nullable=False),
        sa.Column("after", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("approver", sa.String(length=64), nullable=False),
        sa.Column("draft_id", sa.Integer(), nullable=True),
        sa.Column("rolled_back", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("knowledge_revisions", schema=None) as batch_op:
        for column in ("at", "entry_id"):
            batch_op.create_index(batch_op.f(f"ix_knowledge_revisions_{column}"), [column], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("knowledge_revisions", schema=None) as batch_op:
        for column in ("entry_id", "at"):
            batch_op.drop_index(batch_op.f(f"ix_knowledge_revisions_{column}"))
    op.drop_table("knowledge_revisions")
    with op.batch_alter_table("knowledge_drafts", schema=None) as batch_op:
        for column in ("issue_id", "status", "entry_id"):
            batch_op.drop_index(batch_op.f(f"ix_knowledge_drafts_{column}"))
    op.drop_table("knowledge_drafts")
