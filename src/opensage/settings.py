"""The one settings object: built from CLI flags and ``OPENSAGE_*`` variables, passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "OPENSAGE_"
AUTH_MODES = ("none", "sigv4")
# Under a Ray node's temporary directory: this server's training and processing hosts'
# directories (``runner.remote_host``) and its model instances' (``serving.remote_instance``),
# both hidden from an isolated host or model worker on that node.
NODE_HOSTS_DIR = "opensage-hosts"
NODE_INSTANCES_DIR = "opensage-instances"


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8484
    data_dir: Path = field(default_factory=lambda: Path.home() / ".opensage")
    db_url: str | None = None  # default: sqlite file in data_dir
    object_store_url: str | None = None  # default: local directory in data_dir
    account_id: str = "000000000000"
    region: str = "us-east-1"
    enable_reset: bool = False
    max_request_bytes: int = 5 * 1024**3  # S3's single PUT limit; JSON APIs have their own
    job_slots: int = field(default_factory=lambda: os.cpu_count() or 1)  # concurrent jobs
    stop_grace_seconds: float = 120.0  # SIGTERM -> SIGKILL on StopTrainingJob, as AWS waits
    spot_interruptions_per_hour: float = 0.0  # simulated reclaims of managed spot capacity
    preload_algorithms: bool = True  # a warm fork server: jobs skip ~1 s of imports
    spot_discount: float = 0.7  # BillableTimeInSeconds = training time x (1 - discount)
    capture_buffer_bytes: int = 64 * 1024**2  # data capture held between writes; more: dropped
    metric_retention_days: float = 15.0  # metric points older are purged (AWS: 1-minute data)
    housekeeping_interval_seconds: float = 3600.0  # how often expired data is purged
    # CloudTrail: every API call is recorded (off: for benchmarks only); kept this many days
    audit: bool = True
    audit_retention_days: float = 90.0
    # Caps on unpacking one archive (model.tar.gz): total bytes, and unpacked/compressed bytes
    # once 1 MiB is out (deflate cannot pass ~1032:1, so 200 stops a gzip of zeros at 1 MiB).
    archive_max_unpacked_bytes: int = 10 * 1024**3
    archive_max_ratio: float = 200.0
    # Members (files, directories, links) one archive may hold: a tar of millions of empty
    # files passes the byte caps but exhausts inodes and time.
    archive_max_members: int = 100_000
    # Script mode: where framework environments are built (default data_dir / "frameworks"),
    # and directories of wheels uv searches (find-links); the CPU torch wheel lies there.
    frameworks_dir: Path = Path()
    wheelhouse: tuple[Path, ...] = ()
    # The container engine for the user's own images: a socket path or URL (unix://, tcp://,
    # ssh://), "none" for no engine; unset: DOCKER_HOST, else Docker's or Podman's socket.
    container_engine: str | None = None
    # Authentication: "none" (loopback only, unless allow_anonymous_remote) or "sigv4". The
    # root key pair is made at first start unless given here.
    auth: str = "none"
    allow_anonymous_remote: bool = False
    root_access_key_id: str | None = None
    root_secret_access_key: str | None = field(default=None, repr=False)
    # How long a console sign-in lasts (sigv4: its session cookie's lifetime).
    console_session_hours: float = 12.0
    # What runs training jobs' hosts: "local" (processes on this machine) or "ray" (actors
    # on the Ray cluster at ray_address; "auto": the one `ray start` runs on this machine).
    executor: str = "local"
    ray_address: str | None = None
    # Several servers on one database: how long a dead server's leases (jobs it ran, the
    # endpoints it served) hold before another server takes the work over, and the URL by
    # which the other servers reach this one (endpoint requests are forwarded to the server
    # serving the endpoint; default: local_url).
    lease_ttl_seconds: float = 60.0
    advertise_url: str | None = None
    # The key that seals stored secret access keys (default data_dir / "secret.key"):
    # servers sharing a database must share it.
    secret_key_file: Path | None = None

    def __post_init__(self) -> None:
        if self.executor not in ("local", "ray"):
            raise ValueError(f"executor must be 'local' or 'ray', not {self.executor!r}")
        if self.frameworks_dir == Path():
            object.__setattr__(self, "frameworks_dir", self.data_dir / "frameworks")
        if not self.lease_ttl_seconds > 0:  # 0 would expire every lease at once: work twice
            raise ValueError(f"lease_ttl_seconds must be positive, not {self.lease_ttl_seconds}")
        if self.auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {', '.join(AUTH_MODES)}, not {self.auth!r}")

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'opensage.db'}"

    @property
    def objects_url(self) -> str:
        return self.object_store_url or str(self.data_dir / "objects")

    @property
    def private_paths(self) -> tuple[Path, ...]:
        """The server's own directories and files, hidden from an isolated job or model
        worker (``EnableNetworkIsolation``): the data directory, a local object store, a
        SQLite database with its journals, the secret key file."""
        paths = [self.data_dir]
        objects = self.objects_url.removeprefix("file://")
        if "://" not in objects:
            paths.append(Path(objects).absolute())
        if self.database_url.startswith("sqlite:///"):
            database = Path(self.database_url[len("sqlite:///"):].split("?", 1)[0]).absolute()
            paths += [database, *(database.with_name(database.name + suffix)
                                  for suffix in ("-wal", "-shm", "-journal"))]
        if self.secret_key_file is not None:
            paths.append(self.secret_key_file)
        return tuple(paths)

    @property
    def shared_paths(self) -> tuple[Path, ...]:
        """What an isolated job or model worker still reads of ``private_paths`` (read-only):
        the framework environments and the wheelhouse."""
        return (self.frameworks_dir, *self.wheelhouse)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def local_url(self) -> str:
        """The URL by which a process on this machine (a job, a model worker) reaches the
        server: a wildcard bind address is answered on loopback."""
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def own_url(self) -> str:
        """The URL other servers sharing the database reach this one by."""
        return (self.advertise_url or self.local_url).rstrip("/")

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{resource}"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``OPENSAGE_*`` variables, then explicit (non-None) overrides."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _coerce(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"]).expanduser().resolve()
        if "frameworks_dir" in values:
            values["frameworks_dir"] = Path(values["frameworks_dir"]).expanduser().resolve()
        return cls(**values)

    def with_port(self, port: int) -> Settings:
        return replace(self, port=port)


def _coerce(name: str, raw: str) -> Any:
    if name in ("port", "max_request_bytes", "job_slots", "capture_buffer_bytes",
                "archive_max_unpacked_bytes", "archive_max_members"):
        return int(raw)
    if name in ("stop_grace_seconds", "spot_interruptions_per_hour", "spot_discount",
                "metric_retention_days", "housekeeping_interval_seconds", "archive_max_ratio",
                "audit_retention_days", "lease_ttl_seconds", "console_session_hours"):
        return float(raw)
    if name in ("enable_reset", "preload_algorithms", "allow_anonymous_remote", "audit"):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if name in ("data_dir", "frameworks_dir", "secret_key_file"):
        return Path(raw)
    if name == "wheelhouse":
        return tuple(Path(p).expanduser() for p in raw.split(os.pathsep) if p)
    return raw
