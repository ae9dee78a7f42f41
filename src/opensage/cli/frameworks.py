"""``opensage frameworks list|prepare``: script mode's framework environments."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from opensage.runner.environments import (
    EnvironmentBuildError,
    Environments,
    Framework,
    UnsupportedFramework,
    builtin_environment,
    resolve,
)
from opensage.runner.environments.catalog import BUILTIN_ENVIRONMENTS, REPOSITORIES, TENSORFLOW
from opensage.settings import Settings

app = typer.Typer(no_args_is_help=True,
                  help="Script mode's framework environments (built once, cached).")
console = Console()

DataDirOpt = Annotated[Path | None, typer.Option(
    help="The server's data directory. [env OPENSAGE_DATA_DIR, default ~/.opensage]")]
FrameworksDirOpt = Annotated[Path | None, typer.Option(
    help="Where environments are built. [env OPENSAGE_FRAMEWORKS_DIR, "
         "default <data-dir>/frameworks]")]


def _environments(data_dir: Path | None, frameworks_dir: Path | None) -> Environments:
    settings = Settings.from_env(data_dir=data_dir, frameworks_dir=frameworks_dir)
    return Environments(settings.frameworks_dir, wheelhouse=settings.wheelhouse)


@app.command("list")
def list_(data_dir: DataDirOpt = None, frameworks_dir: FrameworksDirOpt = None) -> None:
    """What script mode supports, and which environments are built here."""
    envs = _environments(data_dir, frameworks_dir)
    table = Table(title=f"Framework environments in {envs.root}")
    for column in ("framework", "versions", "image repositories", "environment", "built",
                   "size"):
        table.add_column(column, no_wrap=column in ("environment", "built", "size"))
    shown: set[str] = set()
    for framework, built in envs.listing():
        location = envs.location(framework)
        repositories = "" if framework.name in shown else ", ".join(
            REPOSITORIES.get(framework.name, ("opensage's deep-learning built-ins",)))
        shown.add(framework.name)
        table.add_row(framework.name, _versions(framework), repositories, framework.key,
                      "[green]yes[/]" if built else "no",
                      _size(location) if built else "")
    table.add_row("huggingface", "PyTorch flavour, transformers >= 4.28",
                  ", ".join(REPOSITORIES["huggingface"]), "per transformers version", "", "")
    table.add_row("mxnet, chainer", "[red]unsupported[/]: no wheels for Python 3.11", "", "",
                  "", "")
    console.print(table)


@app.command()
def prepare(framework: Annotated[str, typer.Argument(
                help="sklearn, xgboost, pytorch, tensorflow, huggingface, or builtin-torch "
                     "(the deep-learning built-ins' environment)")],
            version: Annotated[str, typer.Argument(
                help="SageMaker framework_version, as in the image tag (e.g. 1.2-1, 2.1); "
                     "none for builtin-torch")] = "",
            data_dir: DataDirOpt = None, frameworks_dir: FrameworksDirOpt = None) -> None:
    """Build a framework's environment ahead of time (jobs otherwise build it on first use)."""
    envs = _environments(data_dir, frameworks_dir)
    try:
        chosen = (builtin_environment(framework) if framework in BUILTIN_ENVIRONMENTS
                  else resolve(framework, version))
        python = envs.python(chosen, log=lambda line: console.print(line, highlight=False,
                                                                     markup=False))
    except UnsupportedFramework as err:
        typer.echo(f"error: {err.message}", err=True)
        raise typer.Exit(2) from None
    except EnvironmentBuildError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    console.print(f"[bold green]ready[/]: {chosen.name} {chosen.version} -> {python}",
                  soft_wrap=True)


def _versions(framework: Framework) -> str:
    if framework.name == "pytorch":
        return "1.x, 2.x (CPU torch from the wheelhouse)"
    if framework.name == "tensorflow":
        minors = list(TENSORFLOW)
        if framework.version == minors[0]:
            return f"2.0 … {framework.version}"
        if framework.version == minors[-1]:
            return f"{framework.version} and later"
    return framework.version


def _size(path: Path) -> str:
    seen: set[int] = set()
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            try:
                stat = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            if stat.st_ino not in seen:
                seen.add(stat.st_ino)
                total += stat.st_size
    return f"{total / 1024**2:,.0f} MiB"
