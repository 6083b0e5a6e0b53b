"""Routing: caller number source and extension mode on mapping gateways; time-based
routing (work calendar and period) on routing gateways.

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
    # batch mode: SQLite adds constraints by rebuilding the table
    with op.batch_alter_table('mapping_gateways') as batch:
        batch.add_column(sa.Column('caller_number_source', sa.String(length=16), server_default='From',
                                   nullable=False))
        batch.add_column(sa.Column('route_extension', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.create_check_constraint(
            'caller_number_source', "caller_number_source IN ('From', 'Remote-Party-ID', 'Display')")
    with op.batch_alter_table('routing_gateways') as batch:
        batch.add_column(sa.Column('work_calendar_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('period', sa.String(length=16), server_default='always', nullable=False))
        batch.create_foreign_key(op.f('fk_routing_gateways_work_calendar_id_work_calendars'),
                                 'work_calendars', ['work_calendar_id'], ['id'], ondelete='RESTRICT')
        batch.create_check_constraint('period', "period IN ('always', 'working', 'non_working')")


def downgrade() -> None:
    with op.batch_alter_table('routing_gateways') as batch:
        batch.drop_constraint(op.f('ck_routing_gateways_period'), type_='check')
        batch.drop_constraint(op.f('fk_routing_gateways_work_calendar_id_work_calendars'), type_='foreignkey')
        batch.drop_column('period')
        batch.drop_column('work_calendar_id')
    with op.batch_alter_table('mapping_gateways') as batch:
        batch.drop_constraint(op.f('ck_mapping_gateways_caller_number_source'), type_='check')
        batch.drop_column('route_extension')
        batch.drop_column('caller_number_source')
