"""Initial schema: every table of the product.

Money columns are BIGINT ten-thousandths and prices per minute BIGINT millionths
(control/store/types.py); instants are Unix seconds in DOUBLE columns.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 08:01:48.603996
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('time', sa.Double(), nullable=False),
    sa.Column('operator', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('entity', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.String(length=64), server_default='', nullable=False),
    sa.Column('detail', sa.JSON(), server_default='{}', nullable=False),
    sa.Column('source_ip', sa.String(length=64), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index('ix_audit_log_entity_entity_id', 'audit_log', ['entity', 'entity_id'], unique=False)
    op.create_index(op.f('ix_audit_log_time'), 'audit_log', ['time'], unique=False)
    op.create_table('cdrs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('call_id', sa.String(length=255), nullable=False),
    sa.Column('caller', sa.String(length=128), server_default='', nullable=False),
    sa.Column('caller_sent', sa.String(length=128), nullable=True),
    sa.Column('callee', sa.String(length=128), server_default='', nullable=False),
    sa.Column('callee_sent', sa.String(length=128), nullable=True),
    sa.Column('customer_id', sa.String(length=64), nullable=True),
    sa.Column('customer', sa.String(length=128), server_default='', nullable=False),
    sa.Column('mapping_gateway_id', sa.Integer(), nullable=True),
    sa.Column('mapping_gateway', sa.String(length=128), server_default='', nullable=False),
    sa.Column('caller_ip', sa.String(length=64), server_default='', nullable=False),
    sa.Column('vendor_id', sa.String(length=64), nullable=True),
    sa.Column('vendor', sa.String(length=128), server_default='', nullable=False),
    sa.Column('routing_gateway_id', sa.Integer(), nullable=True),
    sa.Column('routing_gateway', sa.String(length=128), server_default='', nullable=False),
    sa.Column('vendor_ip', sa.String(length=64), server_default='', nullable=False),
    sa.Column('start_time', sa.Double(), nullable=False),
    sa.Column('progress_time', sa.Double(), nullable=True),
    sa.Column('answer_time', sa.Double(), nullable=True),
    sa.Column('end_time', sa.Double(), nullable=False),
    sa.Column('hold_time', sa.Double(), server_default='0', nullable=False),
    sa.Column('billed_time', sa.Integer(), server_default='0', nullable=False),
    sa.Column('pdd_ms', sa.Integer(), nullable=True),
    sa.Column('termination_reason', sa.String(length=64), server_default='', nullable=False),
    sa.Column('termination_detail', sa.Text(), server_default='', nullable=False),
    sa.Column('sip_code', sa.Integer(), server_default='0', nullable=False),
    sa.Column('end_direction', sa.String(length=8), server_default='', nullable=False),
    sa.Column('caller_codec', sa.String(length=32), server_default='', nullable=False),
    sa.Column('callee_codec', sa.String(length=32), server_default='', nullable=False),
    sa.Column('caller_dtmf', sa.String(length=16), server_default='', nullable=False),
    sa.Column('callee_dtmf', sa.String(length=16), server_default='', nullable=False),
    sa.Column('dtmf_digits', sa.String(length=255), server_default='', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('media_stats', sa.JSON(), server_default='{}', nullable=False),
    sa.Column('rate_table_id', sa.Integer(), nullable=True),
    sa.Column('rate_table', sa.String(length=128), server_default='', nullable=False),
    sa.Column('rate_prefix', sa.String(length=32), nullable=True),
    sa.Column('rate', sa.BigInteger(), nullable=True),
    sa.Column('vendor_rate_table_id', sa.Integer(), nullable=True),
    sa.Column('vendor_rate_table', sa.String(length=128), server_default='', nullable=False),
    sa.Column('vendor_rate_prefix', sa.String(length=32), nullable=True),
    sa.Column('vendor_rate', sa.BigInteger(), nullable=True),
    sa.Column('fee', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('cost', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('profit', sa.BigInteger(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cdrs'))
    )
    op.create_index('ix_cdrs_call_id', 'cdrs', ['call_id'], unique=False)
    op.create_index('ix_cdrs_customer_id_start_time', 'cdrs', ['customer_id', 'start_time'], unique=False)
    op.create_index('ix_cdrs_customer_start_time', 'cdrs', ['customer', 'start_time'], unique=False)
    op.create_index('ix_cdrs_routing_gateway_start_time', 'cdrs', ['routing_gateway', 'start_time'], unique=False)
    op.create_index('ix_cdrs_start_time', 'cdrs', ['start_time'], unique=False)
    op.create_table('gateway_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('line_limit', sa.Integer(), nullable=True),
    sa.Column('reserved_lines', sa.Integer(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gateway_groups')),
    sa.UniqueConstraint('name', name=op.f('uq_gateway_groups_name'))
    )
    op.create_table('rate_tables',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('memo', sa.Text(), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rate_tables')),
    sa.UniqueConstraint('name', name=op.f('uq_rate_tables_name'))
    )
    op.create_table('store_journal',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('segment', sa.Integer(), nullable=False),
    sa.Column('applied_offset', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_store_journal'))
    )
    op.create_table('system_parameters',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.Column('updated_by', sa.String(length=64), server_default='', nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_system_parameters'))
    )
    op.create_table('work_calendars',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('working_weekdays', sa.JSON(), server_default='[1, 2, 3, 4, 5]', nullable=False),
    sa.Column('work_start', sa.String(length=5), server_default='09:00', nullable=False),
    sa.Column('work_end', sa.String(length=5), server_default='18:00', nullable=False),
    sa.Column('holidays', sa.JSON(), server_default='[]', nullable=False),
    sa.Column('time_zone', sa.String(length=64), server_default='UTC', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_work_calendars')),
    sa.UniqueConstraint('name', name=op.f('uq_work_calendars_name'))
    )
    op.create_table('cdr_attempts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('cdr_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('vendor_id', sa.String(length=64), nullable=True),
    sa.Column('vendor', sa.String(length=128), server_default='', nullable=False),
    sa.Column('routing_gateway_id', sa.Integer(), nullable=True),
    sa.Column('routing_gateway', sa.String(length=128), server_default='', nullable=False),
    sa.Column('vendor_ip', sa.String(length=64), server_default='', nullable=False),
    sa.Column('callee_sent', sa.String(length=128), nullable=True),
    sa.Column('start_time', sa.Double(), nullable=False),
    sa.Column('progress_time', sa.Double(), nullable=True),
    sa.Column('end_time', sa.Double(), nullable=True),
    sa.Column('pdd_ms', sa.Integer(), nullable=True),
    sa.Column('sip_code', sa.Integer(), server_default='0', nullable=False),
    sa.Column('termination_reason', sa.String(length=64), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['cdr_id'], ['cdrs.id'], name=op.f('fk_cdr_attempts_cdr_id_cdrs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cdr_attempts'))
    )
    op.create_index(op.f('ix_cdr_attempts_cdr_id'), 'cdr_attempts', ['cdr_id'], unique=False)
    op.create_table('period_rates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('work_calendar_id', sa.Integer(), nullable=False),
    sa.Column('working_rate_table_id', sa.Integer(), nullable=False),
    sa.Column('non_working_rate_table_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['non_working_rate_table_id'], ['rate_tables.id'], name=op.f('fk_period_rates_non_working_rate_table_id_rate_tables'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['work_calendar_id'], ['work_calendars.id'], name=op.f('fk_period_rates_work_calendar_id_work_calendars'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['working_rate_table_id'], ['rate_tables.id'], name=op.f('fk_period_rates_working_rate_table_id_rate_tables'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_period_rates')),
    sa.UniqueConstraint('name', name=op.f('uq_period_rates_name'))
    )
    op.create_table('rates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rate_table_id', sa.Integer(), nullable=False),
    sa.Column('prefix', sa.String(length=32), nullable=False),
    sa.Column('area', sa.String(length=128), server_default='', nullable=False),
    sa.Column('price', sa.BigInteger(), nullable=False),
    sa.Column('first_unit', sa.Integer(), server_default='60', nullable=False),
    sa.Column('next_unit', sa.Integer(), server_default='60', nullable=False),
    sa.Column('connection_fee', sa.BigInteger(), server_default='0', nullable=False),
    sa.CheckConstraint('first_unit > 0 AND next_unit > 0', name=op.f('ck_rates_units')),
    sa.ForeignKeyConstraint(['rate_table_id'], ['rate_tables.id'], name=op.f('fk_rates_rate_table_id_rate_tables'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rates')),
    sa.UniqueConstraint('rate_table_id', 'prefix', name=op.f('uq_rates_rate_table_id_prefix'))
    )
    op.create_table('accounts',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='Active', nullable=False),
    sa.Column('expiry_date', sa.Date(), server_default='2099-12-31', nullable=False),
    sa.Column('balance', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('credit_limit', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('concurrent_call_limit', sa.Integer(), nullable=True),
    sa.Column('rate_table_id', sa.Integer(), nullable=True),
    sa.Column('period_rate_id', sa.Integer(), nullable=True),
    sa.Column('work_calendar_id', sa.Integer(), nullable=True),
    sa.Column('number_section_allow', sa.JSON(), server_default='[]', nullable=False),
    sa.Column('number_section_block', sa.JSON(), server_default='[]', nullable=False),
    sa.Column('billing_model', sa.String(length=16), server_default='Standard', nullable=False),
    sa.Column('agent_id', sa.String(length=64), nullable=True),
    sa.Column('auth_account_edit', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('auth_phone_edit', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('auth_phone_card_edit', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('auth_gateway_add_delete', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('auth_gateway_info', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('auth_gateway_capacity', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('auth_payment_account', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('auth_payment_sub_accounts', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('suppress_duration_alarm', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('memo', sa.Text(), server_default='', nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.CheckConstraint("billing_model IN ('Standard', 'Flow')", name=op.f('ck_accounts_billing_model')),
    sa.CheckConstraint("kind IN ('customer', 'vendor')", name=op.f('ck_accounts_kind')),
    sa.CheckConstraint("status IN ('Active', 'Locked', 'Inactive', 'Expired')", name=op.f('ck_accounts_status')),
    sa.CheckConstraint('agent_id IS NULL OR agent_id <> id', name=op.f('ck_accounts_agent_not_self')),
    sa.ForeignKeyConstraint(['agent_id'], ['accounts.id'], name=op.f('fk_accounts_agent_id_accounts'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['period_rate_id'], ['period_rates.id'], name=op.f('fk_accounts_period_rate_id_period_rates'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['rate_table_id'], ['rate_tables.id'], name=op.f('fk_accounts_rate_table_id_rate_tables'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['work_calendar_id'], ['work_calendars.id'], name=op.f('fk_accounts_work_calendar_id_work_calendars'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('name', name=op.f('uq_accounts_name'))
    )
    op.create_index(op.f('ix_accounts_agent_id'), 'accounts', ['agent_id'], unique=False)
    op.create_table('ledger',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('time', sa.Double(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('balance_after', sa.BigInteger(), nullable=False),
    sa.Column('credit_limit_after', sa.BigInteger(), nullable=True),
    sa.Column('operator', sa.String(length=64), server_default='', nullable=False),
    sa.Column('memo', sa.Text(), server_default='', nullable=False),
    sa.Column('call_id', sa.String(length=255), nullable=True),
    sa.Column('transfer_account_id', sa.String(length=64), nullable=True),
    sa.CheckConstraint("kind IN ('recharge', 'deduct', 'adjust', 'transfer', 'credit_limit', 'charge')", name=op.f('ck_ledger_kind')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_ledger_account_id_accounts'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger'))
    )
    op.create_index('ix_ledger_account_id_id', 'ledger', ['account_id', 'id'], unique=False)
    op.create_index('ix_ledger_time', 'ledger', ['time'], unique=False)
    op.create_table('mapping_gateways',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('auth_mode', sa.String(length=16), server_default='IP', nullable=False),
    sa.Column('addresses', sa.JSON(), server_default='[]', nullable=False),
    sa.Column('sip_port', sa.Integer(), nullable=True),
    sa.Column('username', sa.String(length=128), nullable=True),
    sa.Column('password', sa.String(length=128), nullable=True),
    sa.Column('prefix', sa.String(length=32), server_default='', nullable=False),
    sa.Column('codecs', sa.JSON(), server_default='[]', nullable=False),
    sa.Column('dtmf', sa.JSON(), server_default='{}', nullable=False),
    sa.Column('media_proxy', sa.Integer(), nullable=True),
    sa.Column('rate_limit', sa.Integer(), nullable=True),
    sa.Column('max_concurrent_calls', sa.Integer(), nullable=True),
    sa.Column('conversation_limitation', sa.Integer(), server_default='3600', nullable=False),
    sa.Column('caller_dial_plan', sa.JSON(), server_default='[]', nullable=False),
    sa.Column('callee_dial_plan', sa.JSON(), server_default='[]', nullable=False),
    sa.Column('support_privacy', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('recognize_call_forward', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('trusted', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('locked', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('expiry_date', sa.Date(), server_default='2099-12-31', nullable=False),
    sa.Column('memo', sa.Text(), server_default='', nullable=False),
    sa.CheckConstraint("auth_mode IN ('IP', 'IP+Port', 'Password')", name=op.f('ck_mapping_gateways_auth_mode')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_mapping_gateways_account_id_accounts'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mapping_gateways')),
    sa.UniqueConstraint('name', name=op.f('uq_mapping_gateways_name'))
    )
    op.create_index(op.f('ix_mapping_gateways_account_id'), 'mapping_gateways', ['account_id'], unique=False)
    op.create_table('operators',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.Text(), server_default='', nullable=False),
    sa.Column('role', sa.String(length=16), server_default='operator', nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=True),
    sa.Column('login_ip_allow', sa.JSON(), server_default='[]', nullable=False),
    sa.Column('locked', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False),
    sa.Column('locked_until', sa.Double(), nullable=True),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.CheckConstraint("role IN ('super admin', 'admin', 'operator', 'read-only')", name=op.f('ck_operators_role')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_operators_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operators')),
    sa.UniqueConstraint('name', name=op.f('uq_operators_name'))
    )
    op.create_index(op.f('ix_operators_account_id'), 'operators', ['account_id'], unique=False)
    op.create_table('phones',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('number', sa.String(length=64), nullable=False),
    sa.Column('password', sa.String(length=128), nullable=False),
    sa.Column('line_limit', sa.Integer(), nullable=True),
    sa.Column('display_name', sa.String(length=128), server_default='', nullable=False),
    sa.Column('media_proxy', sa.Integer(), nullable=True),
    sa.Column('dtmf', sa.JSON(), server_default='{}', nullable=False),
    sa.Column('do_not_disturb', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('locked', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('memo', sa.Text(), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_phones_account_id_accounts'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_phones')),
    sa.UniqueConstraint('number', name=op.f('uq_phones_number'))
    )
    op.create_index(op.f('ix_phones_account_id'), 'phones', ['account_id'], unique=False)
    op.create_table('routing_gateways',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=False),
    sa.Column('port', sa.Integer(), server_default='5060', nullable=False),
    sa.Column('protocol', sa.String(length=8), server_default='udp', nullable=False),
    sa.Column('prefixes', sa.JSON(), server_default='[""]', nullable=False),
    sa.Column('priority', sa.Integer(), server_default='0', nullable=False),
    sa.Column('line_limit', sa.Integer(), nullable=True),
    sa.Column('gateway_prefix', sa.String(length=32), server_default='', nullable=False),
    sa.Column('gateway_group_id', sa.Integer(), nullable=True),
    sa.Column('rate_table_id', sa.Integer(), nullable=True),
    sa.Column('protect_route', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('switch_until_connect', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('stop_switch_codes', sa.JSON(), server_default='[403, 404, 484, 486, 487, 488]', nullable=False),
    sa.Column('mapping_gateways_allowed', sa.JSON(), server_default='[]', nullable=False),
    sa.Column('mapping_gateways_denied', sa.JSON(), server_default='[]', nullable=False),
    sa.Column('codecs', sa.JSON(), server_default='[]', nullable=False),
    sa.Column('dtmf', sa.JSON(), server_default='{}', nullable=False),
    sa.Column('media_proxy', sa.Integer(), nullable=True),
    sa.Column('pai_privacy', sa.JSON(), server_default='{}', nullable=False),
    sa.Column('caller_dial_plan', sa.JSON(), server_default='[]', nullable=False),
    sa.Column('callee_dial_plan', sa.JSON(), server_default='[]', nullable=False),
    sa.Column('caller_pool', sa.JSON(), server_default='[]', nullable=False),
    sa.Column('caller_pool_mode', sa.String(length=16), server_default='random', nullable=False),
    sa.Column('caller_pool_multiplexes', sa.Integer(), server_default='1', nullable=False),
    sa.Column('locked', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('expiry_date', sa.Date(), server_default='2099-12-31', nullable=False),
    sa.Column('memo', sa.Text(), server_default='', nullable=False),
    sa.CheckConstraint("caller_pool_mode IN ('random', 'round_robin')", name=op.f('ck_routing_gateways_caller_pool_mode')),
    sa.CheckConstraint("protocol IN ('udp', 'tcp', 'tls')", name=op.f('ck_routing_gateways_protocol')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_routing_gateways_account_id_accounts'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['gateway_group_id'], ['gateway_groups.id'], name=op.f('fk_routing_gateways_gateway_group_id_gateway_groups'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['rate_table_id'], ['rate_tables.id'], name=op.f('fk_routing_gateways_rate_table_id_rate_tables'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_routing_gateways')),
    sa.UniqueConstraint('name', name=op.f('uq_routing_gateways_name'))
    )
    op.create_index(op.f('ix_routing_gateways_account_id'), 'routing_gateways', ['account_id'], unique=False)
    op.create_table('operator_rights',
    sa.Column('operator_id', sa.Integer(), nullable=False),
    sa.Column('module', sa.String(length=32), nullable=False),
    sa.Column('can_view', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('can_add', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('can_edit', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('can_delete', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_operator_rights_operator_id_operators'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('operator_id', 'module', name=op.f('pk_operator_rights'))
    )


def downgrade() -> None:
    # indexes go with their tables
    op.drop_table('operator_rights')
    op.drop_table('routing_gateways')
    op.drop_table('phones')
    op.drop_table('operators')
    op.drop_table('mapping_gateways')
    op.drop_table('ledger')
    op.drop_table('accounts')
    op.drop_table('rates')
    op.drop_table('period_rates')
    op.drop_table('cdr_attempts')
    op.drop_table('work_calendars')
    op.drop_table('system_parameters')
    op.drop_table('store_journal')
    op.drop_table('rate_tables')
    op.drop_table('gateway_groups')
    op.drop_table('cdrs')
    op.drop_table('audit_log')
