"""flow declarations: on-chain facts and decisions (LOCAL, untracked: regenerate 0001 instead)

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('flow_declarations', schema=None) as b:
        b.add_column(sa.Column('asset_leaf', sa.String(length=66), nullable=True))
        b.add_column(sa.Column('declared_at', sa.DateTime(timezone=True), nullable=True))
        b.add_column(sa.Column('decision', sa.SmallInteger(), nullable=False, server_default=sa.text('1')))
        b.add_column(sa.Column('decision_reason', sa.Text(), nullable=True))
        b.add_column(sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True))
        b.add_column(sa.Column('decision_tx', sa.String(length=66), nullable=True))
        b.add_column(sa.Column('received_at', sa.DateTime(timezone=True), nullable=True))
        b.create_index(b.f('ix_flow_declarations_asset_leaf'), ['asset_leaf'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('flow_declarations', schema=None) as b:
        b.drop_index(b.f('ix_flow_declarations_asset_leaf'))
        for c in ('received_at', 'decision_tx', 'decided_at', 'decision_reason', 'decision', 'declared_at',
                  'asset_leaf'):
            b.drop_column(c)
