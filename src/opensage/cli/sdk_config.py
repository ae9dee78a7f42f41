"""``opensage sdk-config``: point the SageMaker Python SDK at opensage without code changes."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Annotated

import typer

from opensage.settings import Settings

_ANY_INTERFACE = ("", "0.0.0.0", "::")


def sdk_config(
    endpoint_url: Annotated[str | None, typer.Option(
        help="opensage's URL. [default: http://127.0.0.1:<OPENSAGE_PORT or 8484>]")] = None,
    account_id: Annotated[str | None, typer.Option(
        help="Account id for the default bucket and role. [env OPENSAGE_ACCOUNT_ID]")] = None,
    region: Annotated[str | None, typer.Option(help="Region. [env OPENSAGE_REGION]")] = None,
    path: Annotated[Path | None, typer.Option(
        help="Where to write config.yaml. [default: $SAGEMAKER_USER_CONFIG_OVERRIDE or the "
             "SDK's user config file, ~/.config/sagemaker/config.yaml on Linux]")] = None,
) -> None:
    """Write the SDK's config.yaml (default bucket, role, telemetry off); print the exports.

    Use as: eval "$(opensage sdk-config)"
    """
    from opensage.sdk import USER_CONFIG_ENV, default_config_path, write_sdk_config

    settings = Settings.from_env(account_id=account_id, region=region)
    host = "127.0.0.1" if settings.host in _ANY_INTERFACE else settings.host
    url = endpoint_url or f"http://{host}:{settings.port}"
    default_path = default_config_path()
    written = write_sdk_config(url, settings.account_id, settings.region, path=path)
    typer.echo(f"# wrote SageMaker SDK defaults to {written}", err=True)
    typer.echo(f"export AWS_ENDPOINT_URL={shlex.quote(url)}")
    typer.echo("export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test "
               f"AWS_DEFAULT_REGION={shlex.quote(settings.region)}")
    typer.echo("export SAGEMAKER_SUPPRESS_V2_WARNING=1")
    # The SDK only finds a file outside its default place through the override variable.
    if written.resolve() != default_path.resolve() or os.environ.get(USER_CONFIG_ENV):
        typer.echo(f"export SAGEMAKER_USER_CONFIG_OVERRIDE={shlex.quote(str(written))}")
