"""The ``opensage`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from opensage.cli.frameworks import app as frameworks_app
from opensage.cli.sdk_config import sdk_config
from opensage.cli.tuning import app as tuning_app
from opensage.settings import Settings

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="opensage: a self-hosted server that speaks the SageMaker API.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db_app, name="db")
app.add_typer(tuning_app, name="tuning")
app.add_typer(frameworks_app, name="frameworks")
console = Console()

HostOpt = Annotated[str | None, typer.Option(help="Interface to bind. [env OPENSAGE_HOST]")]
PortOpt = Annotated[int | None, typer.Option(help="Port; 0 picks a free one. [env OPENSAGE_PORT]")]
DataDirOpt = Annotated[Path | None, typer.Option(
    help="Where the SQLite store and objects live. [env OPENSAGE_DATA_DIR, default ~/.opensage]")]
DbUrlOpt = Annotated[str | None, typer.Option(
    help="SQLAlchemy URL (postgresql+psycopg://...). [env OPENSAGE_DB_URL]")]
ObjOpt = Annotated[str | None, typer.Option(
    help="fsspec URL for objects (s3://bucket/prefix needs the [s3] extra). "
         "[env OPENSAGE_OBJECT_STORE_URL]")]
AccountOpt = Annotated[str | None, typer.Option(help="Account id in ARNs. [env OPENSAGE_ACCOUNT_ID]")]
RegionOpt = Annotated[str | None, typer.Option(help="Region in ARNs. [env OPENSAGE_REGION]")]
EngineOpt = Annotated[str | None, typer.Option(
    help="Container engine for own images: a socket path or URL, or 'none'. Default: "
         "DOCKER_HOST, else Docker's or Podman's socket. [env OPENSAGE_CONTAINER_ENGINE]")]

ExecutorOpt = Annotated[str | None, typer.Option(
    help="What runs training jobs' hosts: 'local' (processes here) or 'ray' (actors on a "
         "Ray cluster; needs the [ray] extra). [env OPENSAGE_EXECUTOR]")]
RayAddressOpt = Annotated[str | None, typer.Option(
    help="The Ray cluster's address (head:port) for --executor ray; default 'auto', the "
         "cluster `ray start` runs on this machine. [env OPENSAGE_RAY_ADDRESS]")]
AdvertiseOpt = Annotated[str | None, typer.Option(
    help="The URL other servers on the same database reach this one by (InvokeEndpoint is "
         "forwarded to the server serving the endpoint); default http://HOST:PORT. "
         "[env OPENSAGE_ADVERTISE_URL]")]
LeaseTtlOpt = Annotated[float | None, typer.Option(
    help="Seconds a dead server's leases hold before another server on the same database "
         "takes its jobs and endpoints over (default 60). [env OPENSAGE_LEASE_TTL_SECONDS]")]


AuthOpt = Annotated[str | None, typer.Option(
    help="none: any request is served (loopback addresses only); sigv4: requests must be "
         "signed with a key this server issued (AWS Signature Version 4). [env OPENSAGE_AUTH]")]
RootKeyOpt = Annotated[str | None, typer.Option(
    help="The root access key id (with --root-secret-access-key); default: made at first "
         "start and written to <data-dir>/root-credentials. [env OPENSAGE_ROOT_ACCESS_KEY_ID]")]
RootSecretOpt = Annotated[str | None, typer.Option(
    help="The root secret access key. [env OPENSAGE_ROOT_SECRET_ACCESS_KEY]")]


def _settings(host: str | None = None, port: int | None = None, data_dir: Path | None = None,
              db_url: str | None = None, object_store_url: str | None = None,
              account_id: str | None = None, region: str | None = None,
              enable_reset: bool | None = None,
              container_engine: str | None = None, **more: Any) -> Settings:
    return Settings.from_env(host=host, port=port, data_dir=data_dir, db_url=db_url,
                             object_store_url=object_store_url, account_id=account_id,
                             region=region, enable_reset=enable_reset or None,
                             container_engine=container_engine, **more)


@app.command()
def server(host: HostOpt = None, port: PortOpt = None, data_dir: DataDirOpt = None,
           db_url: DbUrlOpt = None, object_store_url: ObjOpt = None,
           account_id: AccountOpt = None, region: RegionOpt = None,
           enable_reset: Annotated[bool, typer.Option(
               help="Expose POST /_opensage/reset, which wipes all state (for test suites). "
                    "[env OPENSAGE_ENABLE_RESET]")] = False,
           container_engine: EngineOpt = None,
           executor: ExecutorOpt = None, ray_address: RayAddressOpt = None,
           advertise_url: AdvertiseOpt = None, lease_ttl_seconds: LeaseTtlOpt = None,
           log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
           auth: AuthOpt = None,
           allow_anonymous_remote: Annotated[bool, typer.Option(
               help="Let --auth none listen on a non-loopback address (anyone who reaches "
                    "it runs code as you). [env OPENSAGE_ALLOW_ANONYMOUS_REMOTE]")] = False,
           root_access_key_id: RootKeyOpt = None,
           root_secret_access_key: RootSecretOpt = None) -> None:
    """Run the server in the foreground."""
    import logging

    from opensage.console import PREFIX as CONSOLE_PREFIX
    from opensage.containers import find_engine
    from opensage.server import anonymous_exposure, bind_socket, make_server

    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.WARNING),
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = _settings(host, port, data_dir, db_url, object_store_url, account_id,
                             region, enable_reset, container_engine, auth=auth,
                             executor=executor, ray_address=ray_address,
                             advertise_url=advertise_url, lease_ttl_seconds=lease_ttl_seconds,
                             allow_anonymous_remote=allow_anonymous_remote or None,
                             root_access_key_id=root_access_key_id,
                             root_secret_access_key=root_secret_access_key)
    except ValueError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    refusal = anonymous_exposure(settings)
    if refusal is not None:
        typer.echo(f"error: refusing to start: {refusal}", err=True)
        raise typer.Exit(2)
    _refuse_stale_schema(settings)
    if settings.executor == "ray":
        _check_ray()
    if settings.auth == "sigv4":
        _root_credentials(settings)
    sock = bind_socket(settings.host, settings.port)
    settings = settings.with_port(sock.getsockname()[1])
    console.print(f"[bold green]opensage[/] listening on [bold]{settings.endpoint_url}[/] "
                  f"(data: {settings.data_dir}, account {settings.account_id}, "
                  f"region {settings.region}, auth {settings.auth})", soft_wrap=True)
    keys = ("  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test"
            if settings.auth == "none" else
            f"  export AWS_SHARED_CREDENTIALS_FILE={settings.data_dir / 'root-credentials'}"
            "  # or a user's keys")
    console.print(f"Point clients at it:\n  export AWS_ENDPOINT_URL={settings.endpoint_url}\n"
                  f"{keys} AWS_DEFAULT_REGION={settings.region}", highlight=False,
                  soft_wrap=True)
    engine = find_engine(settings.container_engine)  # what the server will find too
    console.print(f"Container engine for own images: {engine.describe()}" if engine else
                  "No container engine: own images are refused (built-ins, framework images "
                  "and script mode need none)", highlight=False, soft_wrap=True)
    if engine is not None:
        engine.close()
    print(f"console: {settings.endpoint_url}{CONSOLE_PREFIX}/", flush=True)
    print(f"PORT={settings.port}", flush=True)
    make_server(settings, log_level=log_level).run(sockets=[sock])


def _root_credentials(settings: Settings) -> None:
    """Make (or set) the root key before serving; a new one is shown once, and only on a
    terminal: a log never holds the secret."""
    import sys

    from opensage.services.iam import IamService
    from opensage.store.db import Database

    db = Database(settings.database_url)
    try:
        root = IamService(settings, db).ensure_root(settings.root_access_key_id,
                                                    settings.root_secret_access_key)
    finally:
        db.dispose()
    if not root.created:
        console.print(f"root access key: {root.access_key_id}", highlight=False)
        return
    console.print(f"[bold]A root key pair was made[/] and written to {root.file} (mode 0600).",
                  soft_wrap=True)
    if sys.stdout.isatty():
        console.print(f"  aws_access_key_id     = {root.access_key_id}\n"
                      f"  aws_secret_access_key = {root.secret_access_key}\n"
                      "It is not shown again.", highlight=False)
    else:
        console.print(f"  aws_access_key_id = {root.access_key_id} (the secret is in the "
                      "file only)", highlight=False)


def _check_ray() -> None:
    from opensage.runner.ray_executor import RayUnavailable, import_ray

    try:
        import_ray()
    except RayUnavailable as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None


def _refuse_stale_schema(settings: Settings) -> None:
    from opensage.store.db import Database, StaleSchemaError

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url)
    try:
        db.prepare()
    except StaleSchemaError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    finally:
        db.dispose()


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDirOpt = None, db_url: DbUrlOpt = None) -> None:
    """Migrate the database to this version's schema."""
    from opensage.store.db import Database

    settings = _settings(data_dir=data_dir, db_url=db_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    Database(settings.database_url).migrate()
    console.print(f"database at {settings.database_url} is up to date")


app.command("sdk-config")(sdk_config)


if __name__ == "__main__":
    app()
