"""Settings of several servers on one database: read from OPENSAGE_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensage.settings import Settings


def test_multiserver_settings_come_from_the_environment(tmp_path: Path):
    settings = Settings.from_env({
        "OPENSAGE_LEASE_TTL_SECONDS": "2.5",
        "OPENSAGE_ADVERTISE_URL": "http://10.0.0.1:8484/",
        "OPENSAGE_SECRET_KEY_FILE": str(tmp_path / "shared.key"),
    }, data_dir=tmp_path)
    assert settings.lease_ttl_seconds == 2.5
    assert settings.own_url == "http://10.0.0.1:8484"  # what other servers forward to
    assert settings.secret_key_file == tmp_path / "shared.key"


def test_without_an_advertised_url_other_servers_reach_this_one_by_its_bind_address(
        tmp_path: Path):
    settings = Settings.from_env({}, data_dir=tmp_path, host="0.0.0.0", port=8484)
    assert settings.lease_ttl_seconds == 60.0
    assert settings.own_url == "http://127.0.0.1:8484"


@pytest.mark.parametrize("ttl", ["0", "-1"])
def test_a_lease_ttl_that_is_not_positive_is_refused(tmp_path: Path, ttl: str):
    with pytest.raises(ValueError, match="lease_ttl_seconds must be positive"):
        Settings.from_env({"OPENSAGE_LEASE_TTL_SECONDS": ttl}, data_dir=tmp_path)


def test_private_paths_name_the_server_files_an_isolated_job_must_not_see(tmp_path):
    default = Settings(data_dir=tmp_path)
    assert default.private_paths == (
        tmp_path, tmp_path / "objects", tmp_path / "opensage.db",
        tmp_path / "opensage.db-wal", tmp_path / "opensage.db-shm",
        tmp_path / "opensage.db-journal")
    assert default.shared_paths == (tmp_path / "frameworks",)
    elsewhere = Settings(data_dir=tmp_path / "d", object_store_url=f"file://{tmp_path}/o",
                         db_url=f"sqlite:///{tmp_path}/db/x.db",
                         secret_key_file=tmp_path / "keys" / "k",
                         wheelhouse=(tmp_path / "w",))
    assert elsewhere.private_paths[:3] == (tmp_path / "d", tmp_path / "o",
                                           tmp_path / "db" / "x.db")
    assert elsewhere.private_paths[-1] == tmp_path / "keys" / "k"
    assert elsewhere.shared_paths == (tmp_path / "d" / "frameworks", tmp_path / "w")
    remote = Settings(data_dir=tmp_path, object_store_url="s3://bucket/prefix",
                      db_url="postgresql://db/opensage")
    assert remote.private_paths == (tmp_path,)


def test_engine_sockets_hidden_from_isolated_jobs(tmp_path):
    from opensage.containers import engine_sockets

    environ = {"XDG_RUNTIME_DIR": str(tmp_path)}
    defaults = [Path("/var/run/docker.sock"), Path("/run/podman/podman.sock"),
                tmp_path / "podman" / "podman.sock", tmp_path / "docker.sock"]
    assert engine_sockets("none", environ) == defaults
    assert engine_sockets("/srv/engine.sock", environ) == [Path("/srv/engine.sock"), *defaults]
    assert engine_sockets(None, {**environ, "DOCKER_HOST": "unix:///x.sock"})[0] == Path(
        "/x.sock")
    assert engine_sockets("tcp://10.0.0.1:2375", {}) == defaults[:2]
