"""The metadata database: one engine, one ``transaction()`` helper, Alembic migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, inspect

from opensage.store.schema import ALL_TABLES, KEPT_BY_WIPE

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

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to the single Alembic head, or to ``revision`` (an empty
        database is created)."""
        with self.engine.begin() as conn:
            cfg = _alembic_config(conn)
            command.upgrade(cfg, revision)

    def prepare(self) -> None:
        """An empty database is created at the schema head; one at an older revision is
        refused (it may be shared: upgrading is an explicit ``opensage db upgrade``)."""
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            empty = current is None and not inspect(conn).get_table_names()
        if empty:
            self.migrate()
        else:
            self.check_schema()

    def check_schema(self) -> None:
        """Refuse to run on a database whose revision is not the code's head."""
        head = ScriptDirectory.from_config(_alembic_config(None)).get_current_head()
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        if current != head:
            raise StaleSchemaError(
                f"the database {self.engine.url.render_as_string(hide_password=True)} is at "
                f"schema revision {current}, this opensage needs {head}: run "
                "`opensage db upgrade` (with the same --data-dir / --db-url) first"
            )

    def wipe(self) -> None:
        """Delete every row (test isolation via ``/_opensage/reset``); keeps the schema
        and the credentials."""
        with self.transaction() as conn:
            for table in reversed(ALL_TABLES):
                if table.name not in KEPT_BY_WIPE:
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
