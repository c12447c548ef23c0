from __future__ import annotations

from logging.config import fileConfig

from alembic import context
import alembic_safety
from sqlalchemy import engine_from_config, pool

# this is the Alembic Config object, which provides
# access to the values within the .ini file in use.
config = context.config

# Interpret the config file for Python logging.
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

# The application's models live in the (absent) app package: `from app.db import Base`;
# autogenerate is not used by the tests.
target_metadata = None

# -x per_migration=true: one transaction per revision instead of one for the whole run
per_migration: bool = context.get_x_argument(as_dictionary=True).get("per_migration") == "true"


def run_migrations_offline() -> None:
    """Run migrations in 'offline' mode: emit the SQL to stdout."""
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        compare_type=True,
    )
    alembic_safety.install(context)

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations in 'online' mode."""
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )

    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            compare_server_default=True,
            transaction_per_migration=per_migration,
        )
        alembic_safety.install(context)

        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
