from datasync.db import run_migrations_env
from pedidos.adapters.postgres import metadata

run_migrations_env(metadata)
