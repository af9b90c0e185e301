from clientes.adapters.postgres import metadata
from datasync.db import run_migrations_env

run_migrations_env(metadata)
