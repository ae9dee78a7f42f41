"""The metadata database: one engine, one ``transaction()`` helper, Alembic migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event

from opensage.store.schema import ALL_TABLES

MIGRATIONS = Path(__file__).parent / "migrations"


class StaleSchemaError(RuntimeError):
    pass


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = _create_engine(url)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        with self.engine.begin() as conn:
            yield conn

    def migrate(self) -> None:
        """Bring the schema to the single Alembic head (an empty database is created)."""
        with self.engine.begin() as conn:
            cfg = _alembic_config(conn)
            command.upgrade(cfg, "head")

    def check_schema(self) -> None:
        """Refuse to run on a database whose revision is not the code's head."""
        head = ScriptDirectory.from_config(_alembic_config(None)).get_current_head()
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        if current != head:
            raise StaleSchemaError(
                f"database schema is at revision {current}, this opensage needs {head}: "
                "run `opensage db upgrade`"
            )

    def wipe(self) -> None:
        """Delete every row (test isolation via ``/_opensage/reset``); keeps the schema."""
        with self.transaction() as conn:
            for table in reversed(ALL_TABLES):
                conn.execute(table.delete())

    def dispose(self) -> None:
        self.engine.dispose()


def _alembic_config(conn: Connection | None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cur.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL stays consistent
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)
