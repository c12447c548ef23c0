from logging.config import fileConfig

from alembic import context
import alembic_safety
from sqlalchemy import engine_from_config, event, pool

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

target_metadata = None
x = context.get_x_argument(as_dictionary=True)


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, dialect_opts={"paramstyle": "named"})
    alembic_safety.install(context)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(config.get_section(config.config_ini_section, {}),
                                     prefix="sqlalchemy.", poolclass=pool.NullPool)
    if connectable.dialect.name == "sqlite" and x.get("pysqlite_default") != "true":
        # The README's recipe: pysqlite sends no BEGIN before DDL; let SQLAlchemy send it, so a
        # refused step rolls back whole.
        @event.listens_for(connectable, "connect")
        def do_connect(dbapi_connection, connection_record):
            dbapi_connection.isolation_level = None

        @event.listens_for(connectable, "begin")
        def do_begin(conn):
            conn.exec_driver_sql("BEGIN")

    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        alembic_safety.install(context)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
