"""Each kept drawing's input digest, which training splits kept drawings by.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

Drawings kept before this revision get theirs here. A migration must keep
doing what it did when it was written, so the digest is spelled out below
rather than imported; a test checks that it equals ``store.input_digest``.
"""

import hashlib

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _digest(model_input: bytes) -> str:
    """The sha256 of a stored 28x28 float32 input, as uint8 0-255 bytes, in hex."""
    image = np.frombuffer(model_input, dtype=np.float32)
    return hashlib.sha256(np.rint(image * 255).astype(np.uint8).tobytes()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("drawings") as batch:
        batch.add_column(sa.Column("input_sha256", sa.String(64), nullable=True))
    connection = op.get_bind()
    drawings = sa.table("drawings", sa.column("id"), sa.column("model_input"), sa.column("input_sha256"))
    rows = connection.execute(sa.select(drawings.c.id, drawings.c.model_input)).all()
    for row in rows:
        connection.execute(
            drawings.update().where(drawings.c.id == row.id).values(input_sha256=_digest(row.model_input))
        )
    with op.batch_alter_table("drawings") as batch:
        batch.alter_column("input_sha256", existing_type=sa.String(64), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("drawings") as batch:
        batch.drop_column("input_sha256")
