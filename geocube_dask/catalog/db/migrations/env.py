"""Alembic environment: runs only inside :func:`geocube_dask.catalog.db.migrate.migrate`.

``migrate`` passes an open connection, already inside the (locked) transaction the migrations must
run in; we never open our own connection nor configure logging.
"""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "geocube_dask migrations run automatically when a catalogue is opened "
        "(geocube_dask.connect or geocube_dask.catalog.db.migrate.migrate), not from the alembic command line"
    )

# No target_metadata: migration scripts name every constraint explicitly (no naming convention applied).
context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
