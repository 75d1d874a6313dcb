"""Alembic environment: migrations run from `bot.db.migrate(url)` (no alembic.ini needed)."""

from alembic import context
from sqlalchemy import engine_from_config, pool

import bot.channels.models  # noqa: F401  (registers the texting channel tables on Base)
import bot.escalation.models  # noqa: F401  (registers the escalation tables on Base)
import bot.outbox.models  # noqa: F401  (registers the outbox table on Base)
import bot.staff.models  # noqa: F401  (registers the staff and article-store tables on Base)
from bot.models import Base

config = context.config
connectable = engine_from_config(
    config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
)
with connectable.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
