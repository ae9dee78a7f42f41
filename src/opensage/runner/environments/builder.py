"""Build and cache the Python environments that script-mode jobs run in.

``root/<key>/`` is a uv virtual environment (this machine's Python) holding a framework's
locked packages; ``root/overlays/<key>-<hash>/`` one that adds a job's ``requirements.txt``.
Each is built once, in a temporary directory renamed into place (a half-built environment is
never used), under a file lock on ``root/<name>.lock`` so that concurrent jobs and servers build
it once. A marker file holds the hash of what was asked for: a changed catalogue rebuilds.
Environments are relocatable (uv ``--relocatable``) so the rename keeps scripts working.

Offline use: uv installs from its cache; a build that fails while the network is unreachable
is retried with ``--offline``.

A build can be cancelled (a job stopped or out of time while it waits): uv is killed, the
half-built environment removed, and the next use builds it again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from opensage.runner.environments.catalog import Framework, catalogue

MARKER = "opensage-environment.json"
UV = [sys.executable, "-m", "uv"]
_TAIL = 40  # lines of uv's output kept for the error message


class EnvironmentBuildError(Exception):
    """uv could not build an environment; the message is fit for a job's FailureReason."""


class BuildCancelled(EnvironmentBuildError):
    """The build was cancelled by its caller; nothing was cached."""


class Environments:
    """The cache of framework environments under ``root``."""

    def __init__(self, root: Path, *, wheelhouse: Sequence[Path] = (),
                 offline: bool = False) -> None:
        self.root = Path(root)
        self.wheelhouse = tuple(Path(p) for p in wheelhouse)
        self.offline = offline

    # -- the interface ------------------------------------------------------------------

    def python(self, framework: Framework, requirements: Path | None = None,
               log: Callable[[str], None] | None = None,
               cancel: threading.Event | None = None) -> Path:
        """The interpreter of the framework's environment (with `requirements` overlaid),
        built first if missing. Setting `cancel` ends a build (or the wait for another
        process's) with ``BuildCancelled``."""
        return self._ensure(framework, requirements, log or (lambda _line: None),
                            cancel or threading.Event()) / "bin" / "python"

    def bin(self, framework: Framework, requirements: Path | None, name: str) -> Path:
        """Another executable of that environment (e.g. ``torchrun``), built first if missing."""
        return self._ensure(framework, requirements, lambda _line: None,
                            threading.Event()) / "bin" / name

    def listing(self) -> list[tuple[Framework, bool]]:
        """Every environment the catalogue can build, and whether it is built here."""
        return [(fw, self.is_built(fw)) for fw in catalogue()]

    def opensage_path(self) -> Path:
        """A directory holding only the ``opensage`` package (a symbolic link to this
        server's): the PYTHONPATH under which a built-in environment's interpreter imports
        opensage's algorithm code and nothing else of the server's (an editable install's
        ``src/`` or a wheel's ``site-packages`` would bring the server's other packages).

        Keyed by the package's location, so that servers of different checkouts sharing one
        frameworks directory each see their own code."""
        import opensage

        package = Path(opensage.__file__).resolve().parent
        digest = hashlib.sha256(str(package).encode()).hexdigest()[:16]
        farm = self.root / "opensage-path" / digest
        link = farm / "opensage"
        if link.is_symlink() and link.resolve() == package:
            return farm
        farm.mkdir(parents=True, exist_ok=True)
        scratch = farm / f".opensage.{os.getpid()}.{time.monotonic_ns()}"
        scratch.symlink_to(package, target_is_directory=True)
        os.replace(scratch, link)  # atomic: concurrent servers agree on the same target
        return farm

    # -- helpers for the CLI ------------------------------------------------------------

    def location(self, framework: Framework, requirements: Path | None = None) -> Path:
        if requirements is None:
            return self.root / framework.key
        digest = hashlib.sha256(
            framework.key.encode() + b"\0" + Path(requirements).read_bytes()).hexdigest()
        return self.root / "overlays" / f"{framework.key}-{digest[:16]}"

    def is_built(self, framework: Framework) -> bool:
        return (self.root / framework.key / MARKER).is_file()

    # -- building -----------------------------------------------------------------------

    def _ensure(self, framework: Framework, requirements: Path | None,
                log: Callable[[str], None], cancel: threading.Event) -> Path:
        # Resolve wheelhouse pins first: a missing CPU torch fails before any lock or build.
        pins = self._wheelhouse_pins(framework)
        packages = [pins.get(_name_of(line), line) for line in framework.packages]
        base = self._build(self.root / framework.key, self._spec(framework, packages, None),
                           framework.key, log, cancel,
                           lambda venv: self._install(venv, packages, only_binary=True, log=log,
                                                      cancel=cancel))
        if requirements is None:
            return base
        requirements = Path(requirements)
        target = self.location(framework, requirements)
        spec = self._spec(framework, packages, requirements.read_text())

        def install(venv: Path) -> None:
            # As the containers do: the framework's packages, then `pip install -r` on top
            # (the user's pins win), except that wheelhouse packages stay the CPU build.
            self._install(venv, packages, only_binary=True, log=log, cancel=cancel)
            self._install(venv, ["-r", str(requirements.resolve())], only_binary=False,
                          log=log, constraints=pins, cwd=requirements.parent, cancel=cancel)

        return self._build(target, spec, f"{framework.key} + {requirements.name}", log, cancel,
                           install)

    def _spec(self, framework: Framework, packages: list[str],
              requirements: str | None) -> dict[str, object]:
        spec: dict[str, object] = {"key": framework.key, "packages": packages,
                                   "python": sys.version.split()[0]}
        if requirements is not None:
            spec["requirements"] = requirements
        return spec

    def _build(self, target: Path, spec: dict[str, object], label: str,
               log: Callable[[str], None], cancel: threading.Event,
               install: Callable[[Path], None]) -> Path:
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
        if _marker_digest(target) == digest:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with _locked(target.parent / f"{target.name}.lock", cancel):
            if _marker_digest(target) == digest:  # another process built it meanwhile
                return target
            log(f"Building environment {label} (first use; cached for later jobs)…")
            started = time.monotonic()
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
            try:
                self._uv(["venv", "--relocatable", "--python", sys.executable, "--quiet",
                          str(tmp)], log, cancel=cancel)
                install(tmp)
                frozen = self._uv(["pip", "freeze", "--python", str(tmp / "bin" / "python")],
                                  log, capture=True)
                (tmp / MARKER).write_text(json.dumps(
                    {"digest": digest, "spec": spec, "frozen": frozen.splitlines()}, indent=1))
                if target.exists():
                    old = target.with_name(f".{target.name}.old-{os.getpid()}")
                    target.rename(old)
                    tmp.rename(target)
                    shutil.rmtree(old, ignore_errors=True)
                else:
                    tmp.rename(target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            log(f"Environment {label} done in {time.monotonic() - started:.0f} s")
        return target

    def _install(self, venv: Path, args: list[str], *, only_binary: bool,
                 log: Callable[[str], None], constraints: dict[str, str] | None = None,
                 cwd: Path | None = None, cancel: threading.Event | None = None) -> None:
        cmd = ["pip", "install", "--python", str(venv / "bin" / "python")]
        for directory in self.wheelhouse:
            cmd += ["--find-links", str(directory)]
        if only_binary:
            cmd += ["--only-binary", ":all:"]
        with tempfile.TemporaryDirectory() as scratch:
            if constraints:
                path = Path(scratch) / "constraints.txt"
                path.write_text("".join(f"{pin}\n" for pin in constraints.values()))
                cmd += ["--constraint", str(path)]
            cmd += args
            if self.offline:
                self._uv([*cmd, "--offline"], log, cwd, cancel=cancel)
                return
            try:
                self._uv(cmd, log, cwd, cancel=cancel)
            except BuildCancelled:
                raise
            except EnvironmentBuildError as first:
                # Unreachable index: what the cache holds may be enough.
                log("Retrying from uv's cache only (--offline)")
                try:
                    self._uv([*cmd, "--offline"], log, cwd, cancel=cancel)
                except BuildCancelled:
                    raise
                except EnvironmentBuildError:
                    raise first from None

    def _uv(self, args: list[str], log: Callable[[str], None], cwd: Path | None = None,
            *, capture: bool = False, cancel: threading.Event | None = None) -> str:
        """Run uv; its output lines go to `log` as they come (or are returned: `capture`).
        Setting `cancel` kills it and what it started (a package's build backend)."""
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        env["NO_COLOR"] = "1"
        if capture:
            done = subprocess.run([*UV, *args], capture_output=True, text=True, env=env,
                                  cwd=cwd, check=False)
            lines, code, out = done.stderr.splitlines(), done.returncode, done.stdout
        else:
            if cancel is not None and cancel.is_set():
                raise BuildCancelled("the build was cancelled")
            proc = subprocess.Popen([*UV, *args], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, env=env, cwd=cwd,
                                    start_new_session=True)
            if cancel is not None:
                threading.Thread(target=_kill_when, args=(cancel, proc), daemon=True,
                                 name="uv-cancel").start()
            assert proc.stdout is not None
            lines = []
            for raw in proc.stdout:
                line = raw.rstrip()
                if line.strip():
                    lines.append(line)
                    log(line)
            code, out = proc.wait(), ""
            if cancel is not None and cancel.is_set():
                raise BuildCancelled("the build was cancelled")
        if code != 0:
            tail = "\n".join(lines[-_TAIL:])
            raise EnvironmentBuildError(
                f"uv {' '.join(args[:2])} failed (exit {code}): {tail}".strip())
        return out

    def _wheelhouse_pins(self, framework: Framework) -> dict[str, str]:
        pins: dict[str, str] = {}
        for name in framework.from_wheelhouse:
            version = _cpu_wheel(name, self.wheelhouse) or self._built_pin(framework, name)
            if version is None:
                searched = ", ".join(map(str, self.wheelhouse)) or "no directory"
                raise EnvironmentBuildError(
                    f"{framework.name} {framework.version} needs a CPU build of {name} for "
                    f"Python {sys.version_info[0]}.{sys.version_info[1]} in the wheelhouse "
                    f"(searched: {searched}); set OPENSAGE_WHEELHOUSE to a directory holding "
                    f"one (e.g. {name}-<version>+cpu-cp311-cp311-manylinux_*_x86_64.whl). "
                    f"opensage never downloads {name} from the index: that is a CUDA build of "
                    "several GB.")
            # A local version (+cpu) is never on the index: this pin can only be the file.
            pins[name] = f"{name}=={version}"
        return pins


    def _built_pin(self, framework: Framework, name: str) -> str | None:
        """The CPU version an environment already built here holds (wheelhouse gone)."""
        try:
            spec = json.loads((self.root / framework.key / MARKER).read_text())["spec"]
            lines = [str(line) for line in spec["packages"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        for line in lines:
            if _name_of(line) == name and "+cpu" in line:
                return line.split("==", 1)[1]
        return None


def _cpu_wheel(name: str, wheelhouse: Sequence[Path]) -> str | None:
    """The highest CPU-build version of `name` with a wheel for this interpreter."""
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    found: list[tuple[tuple[int, ...], str]] = []
    for directory in wheelhouse:
        if not directory.is_dir():
            continue
        for wheel in directory.glob(f"{name}-*.whl"):
            parts = wheel.name[:-4].split("-")
            # name-version-pythontag-abitag-platform, for this interpreter and machine
            if len(parts) != 5 or parts[2] != tag or os.uname().machine not in parts[4]:
                continue
            version = parts[1]
            release, _, local = version.partition("+")
            if "cpu" not in local:
                continue
            try:
                found.append((tuple(int(p) for p in release.split(".")), version))
            except ValueError:
                continue
    return max(found)[1] if found else None


def _name_of(line: str) -> str:
    for i, ch in enumerate(line):
        if not (ch.isalnum() or ch in "-_."):
            return line[:i].lower()
    return line.lower()


def _marker_digest(target: Path) -> str | None:
    try:
        return str(json.loads((target / MARKER).read_text())["digest"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _kill_when(cancel: threading.Event, proc: subprocess.Popen[str]) -> None:
    """Kill ``proc``'s process group once ``cancel`` is set (until it has ended)."""
    while proc.poll() is None:
        if cancel.wait(0.1):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            return


@contextmanager
def _locked(path: Path, cancel: threading.Event) -> Iterator[None]:
    """The file lock on ``path`` (another process may be building): waited for until
    ``cancel`` is set."""
    with open(path, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if cancel.wait(0.1):
                    raise BuildCancelled("the build was cancelled") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
