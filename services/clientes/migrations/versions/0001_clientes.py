"""Customers, orders waiting for their customer, outbox and processed events.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from datasync.schema import (
    create_outbox_v1,
    create_processed_events_v1,
    drop_outbox_v1,
    drop_processed_events_v1,
)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clientes",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("nome", sa.Text, nullable=False),
        sa.Column("email", sa.Text),
        sa.Column("cidade", sa.Text),
        sa.Column("pais", sa.Text),
        sa.Column("segmento", sa.Text),
        sa.Column("versao", sa.Integer, nullable=False),
        sa.Column("removido", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column(
            "atualizado_em",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )
    op.create_table(
        "pedidos_pendentes",
        sa.Column("pedido_id", sa.Text, primary_key=True),
        sa.Column("cliente_id", sa.Text, nullable=False),
        sa.Column("valor", sa.Numeric(14, 2), nullable=False),
        sa.Column("data", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "recebido_em",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )
    op.create_index("ix_pedidos_pendentes_cliente_id", "pedidos_pendentes", ["cliente_id"])
    create_outbox_v1()
    create_processed_events_v1()


def downgrade() -> None:
    drop_processed_events_v1()
    drop_outbox_v1()
    op.drop_table("pedidos_pendentes")
    op.drop_table("clientes")
