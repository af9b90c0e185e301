"""Order facts, per-customer totals, current customers and processed events.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from datasync.schema import create_processed_events_v1, drop_processed_events_v1

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
        sa.Column("segmento", sa.Text),
        sa.Column("enriquecido", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_pedidos_data", "pedidos", ["data"])
    op.create_table(
        "totais_por_cliente",
        sa.Column("cliente_id", sa.Text, primary_key=True),
        sa.Column("pedidos", sa.Integer, nullable=False),
        sa.Column("total", sa.Numeric(18, 2), nullable=False),
        sa.Column("ultimo_pedido", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "clientes",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("nome", sa.Text, nullable=False),
        sa.Column("cidade", sa.Text),
        sa.Column("pais", sa.Text),
        sa.Column("segmento", sa.Text),
        sa.Column("versao", sa.Integer, nullable=False),
        sa.Column("removido", sa.Boolean, nullable=False),
    )
    create_processed_events_v1()


def downgrade() -> None:
    drop_processed_events_v1()
    op.drop_table("clientes")
    op.drop_table("totais_por_cliente")
    op.drop_table("pedidos")
