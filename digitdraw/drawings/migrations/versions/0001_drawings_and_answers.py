"""Drawings users keep, and every model's answer for each.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drawings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("label", sa.SmallInteger, nullable=False),
        sa.Column("model_input", sa.LargeBinary, nullable=False),
        sa.Column("canvas_png", sa.LargeBinary, nullable=True),
        sa.CheckConstraint("label BETWEEN 0 AND 9", name="label_is_a_digit"),
    )
    op.create_index("ix_drawings_session_id", "drawings", ["session_id"])
    op.create_table(
        "answers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("drawing_id", sa.Integer, sa.ForeignKey("drawings.id", ondelete="CASCADE"), nullable=False),
        sa.Column("model_id", sa.SmallInteger, nullable=False),
        sa.Column("model_sha256", sa.String(64), nullable=False),
        sa.Column("probabilities", sa.JSON, nullable=False),
        sa.UniqueConstraint("drawing_id", "model_id", name="one_answer_per_model"),
    )
    op.create_index("ix_answers_drawing_id", "answers", ["drawing_id"])


def downgrade() -> None:
    op.drop_table("answers")
    op.drop_table("drawings")
