"""Orders and their outbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from datasync.schema import create_outbox_v1, drop_outbox_v1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pedidos",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("cliente_id", sa.Text, nullable=False),
        sa.Column("valor", sa.Numeric(14, 2), nullable=False),
        sa.Column("data", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "criado_em",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )
    op.create_index("pedidos_cliente_id_id", "pedidos", ["cliente_id", "id"])
    create_outbox_v1()


def downgrade() -> None:
    drop_outbox_v1()
    op.drop_table("pedidos")
