"""The launcher's private view of the files (``runner.launch --hide/--rw/--ro``, what
``EnableNetworkIsolation`` gives every job and model worker), checked on a real launched
process: hidden directories show only the way to what was given back, hidden files and unix
sockets (a container engine's) are out of reach, read-only stays read-only, and the process
cannot unmount what hides the rest."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from opensage.runner.toolkit import isolation

pytestmark = pytest.mark.skipif(isolation.unavailable() is not None,
                                reason=str(isolation.unavailable()))

LOOK = textwrap.dedent("""
    import ctypes, json, os, socket, sys
    data, engine = sys.argv[1], sys.argv[2]

    def attempt(action):
        try:
            return ["ok", action()]
        except OSError as err:
            return ["refused", type(err).__name__]

    def connect():
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(engine)
        return "connected"

    def write(path):
        with open(path, "w") as f:
            f.write("x")
        return "written"

    print(json.dumps({
        "data": attempt(lambda: sorted(os.listdir(data))),
        "jobs": attempt(lambda: sorted(os.listdir(os.path.join(data, "jobs")))),
        "other": attempt(lambda: open(os.path.join(data, "jobs", "b", "f")).read()),
        "secret": attempt(lambda: open(os.path.join(data, "secret.key")).read()),
        "own": attempt(lambda: write(os.path.join(data, "jobs", "a", "out"))),
        "env": attempt(lambda: open(os.path.join(data, "frameworks", "env")).read()),
        "env_write": attempt(lambda: write(os.path.join(data, "frameworks", "new"))),
        "engine": attempt(connect),
        "unmounted": ctypes.CDLL(None).umount2(data.encode(), 2) == 0,
    }))
""")


def test_hidden_paths_are_out_of_reach_but_what_was_given_back(tmp_path: Path):
    data = tmp_path / "data"
    for path, text in (("jobs/a/in", "mine"), ("jobs/b/f", "theirs"), ("secret.key", "k"),
                       ("frameworks/env", "python")):
        (data / path).parent.mkdir(parents=True, exist_ok=True)
        (data / path).write_text(text)
    engine = str(tmp_path / "engine.sock")
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(engine)
        listening.listen(4)
        views = {}
        for name, hiding in (("open", []), ("hidden", [
                "--hide", str(data), "--hide", engine, "--rw", str(data / "jobs" / "a"),
                "--ro", str(data / "frameworks")])):
            done = subprocess.run(
                [sys.executable, "-m", "opensage.runner.launch", "1", str(os.getpid()),
                 *hiding, "--", sys.executable, "-c", LOOK, str(data), engine],
                capture_output=True, text=True, timeout=120, check=True)
            views[name] = json.loads(done.stdout)
    hidden, open_ = views["hidden"], views["open"]
    assert hidden["data"] == ["ok", ["frameworks", "jobs"]]
    assert hidden["jobs"] == ["ok", ["a"]]
    assert hidden["other"] == hidden["secret"] == ["refused", "FileNotFoundError"]
    assert hidden["own"] == ["ok", "written"]
    assert hidden["env"] == ["ok", "python"]
    assert hidden["env_write"] == ["refused", "OSError"]  # EROFS
    assert hidden["engine"] == ["refused", "ConnectionRefusedError"]
    assert hidden["unmounted"] is False
    assert (data / "jobs" / "a" / "out").read_text() == "x"  # written through, really
    # without --hide, the same process sees everything
    assert open_["other"] == ["ok", "theirs"] and open_["secret"] == ["ok", "k"]
    assert open_["engine"] == ["ok", "connected"]
    assert open_["jobs"] == ["ok", ["a", "b"]]
    assert open_["env_write"] == ["ok", "written"]


def test_the_server_installation_stays_readable_when_a_hidden_path_holds_it(tmp_path: Path):
    """A data directory around the server's own checkout or virtual environment: the launched
    program still imports opensage (the serving worker, a built-in do), read-only."""
    import opensage

    package = Path(opensage.__file__).resolve().parent
    program = ("import os, opensage.runner.launch as l; print(os.access(l.__file__, os.W_OK) "
             "if os.geteuid() else open(l.__file__, 'a') and 'writable')")
    done = subprocess.run(
        [sys.executable, "-m", "opensage.runner.launch", "1", str(os.getpid()),
         "--hide", str(package.parent), "--hide", str(Path(sys.prefix).parent), "--",
         sys.executable, "-c", program], check=False, capture_output=True, text=True,
        timeout=120)
    assert "Read-only file system" in done.stderr or done.stdout.strip() == "False", done
