"""notices: subscriptions, notices, batches and the delivery log; disaster alerts; counter status;
special openings (issue 18)

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notice_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("line_user_id", sa.String(length=64), nullable=False),
        sa.Column("ward", sa.String(length=16), nullable=False),
        sa.Column("topic", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("line_user_id", "ward", "topic", name="uq_notice_subscription"),
    )
    op.create_index("ix_notice_subscriptions_line_user_id", "notice_subscriptions", ["line_user_id"])
    op.create_index("ix_notice_subscriptions_ward_topic", "notice_subscriptions", ["ward", "topic"])
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=500), nullable=True),
        sa.Column("wards", sa.String(length=128), nullable=False),
        sa.Column("topic", sa.String(length=16), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("topic", "status", "send_at"):
        op.create_index(f"ix_notices_{column}", "notices", [column])
    op.create_table(
        "notice_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("retry_key", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(length=120), nullable=True),
        sa.ForeignKeyConstraint(["notice_id"], ["notices.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("retry_key"),
    )
    op.create_index("ix_notice_batches_notice_id", "notice_batches", ["notice_id"])
    op.create_index("ix_notice_batches_status", "notice_batches", ["status"])
    op.create_table(
        "notice_deliveries",
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("line_user_id", sa.String(length=64), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["notice_id"], ["notices.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["batch_id"], ["notice_batches.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("notice_id", "line_user_id"),
    )
    op.create_index("ix_notice_deliveries_batch_id", "notice_deliveries", ["batch_id"])
    op.create_table(
        "disaster_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wards", sa.String(length=128), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("notice_id", sa.Integer(), nullable=True),
        sa.Column("started_by", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_by", sa.String(length=64), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_disaster_alerts_ended_at", "disaster_alerts", ["ended_at"])
    op.create_table(
        "counter_status",
        sa.Column("ward", sa.String(length=16), nullable=False),
        sa.Column("counter_id", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=True),
        sa.Column("wait_minutes", sa.Integer(), nullable=True),
        sa.Column("set_by", sa.String(length=64), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ward", "counter_id"),
    )
    op.create_table(
        "special_openings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ward", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("opens", sa.String(length=5), nullable=False),
        sa.Column("closes", sa.String(length=5), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("counters", sa.String(length=256), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_special_openings_ward", "special_openings", ["ward"])
    op.create_index("ix_special_openings_day", "special_openings", ["day"])


def downgrade() -> None:
    for table in (
        "special_openings",
        "counter_status",
        "disaster_alerts",
        "notice_deliveries",
        "notice_batches",
        "notices",
        "notice_subscriptions",
    ):
        op.drop_table(table)
