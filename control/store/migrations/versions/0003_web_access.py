"""Web access control: the allow list of addresses and networks for the Web API and
Manager.

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('web_access',
                    sa.Column('network', sa.String(length=64), nullable=False),
                    sa.Column('memo', sa.Text(), server_default='', nullable=False),
                    sa.Column('created_at', sa.Double(), nullable=False),
                    sa.Column('created_by', sa.String(length=64), server_default='', nullable=False),
                    sa.PrimaryKeyConstraint('network', name=op.f('pk_web_access')))


def downgrade() -> None:
    op.drop_table('web_access')
