"""The Ray executor's clusters: its own local cluster is private (loopback only, files not readable
by others) and isolated from any other cluster on the machine; another cluster is joined only by
address, and a wrong address is a one-line error in bounded time.

One foreign cluster (`ray start --head` on loopback, token auth) serves the module; plw's own
cluster starts once. Fake cell runners (sweep_support) keep the cells instant.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
import yaml
from support import REPO, processes_mentioning, pythonpath, stop_processes

from plw.errors import PLWError

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from plw.experiment.driver import run_sweep  # noqa: E402
from plw.experiment.executor_ray import RayExecutor, check_address, is_loopback, ray_target  # noqa: E402

HERE = Path(__file__).resolve().parent  # sweep_support's directory, for Ray workers' PYTHONPATH
# Loopback only, even for a foreign test cluster: Ray binds to 127.0.0.1 only with this set.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def foreign():
    """Another Ray cluster on this machine, as a user's `ray start --head` makes one: its address,
    token file and temp dir. It records itself (ray_current_cluster) in its own temp dir, not in the
    machine-wide /tmp/ray, so other Ray users here are not disturbed; RAY_ADDRESS points at it."""
    temp = Path(tempfile.mkdtemp(prefix="plw-foreign-"))  # short: Ray's socket paths must fit 107 bytes
    token = temp / "auth_token"
    token.write_text("f" * 64)
    token.chmod(0o600)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(LOOPBACK_ENV, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    env["PYTHONPATH"] = pythonpath(HERE)
    ray_cli = Path(sys.executable).with_name("ray")
    command = [str(ray_cli), "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
               f"--temp-dir={temp / 'ray'}", "--num-cpus=1", "--include-dashboard=false",
               "--disable-usage-stats"]  # fmt: skip
    try:
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        yield {"address": f"127.0.0.1:{port}", "port": port, "token": token, "temp": temp}
    finally:
        stop_processes(processes_mentioning(str(temp)))
        shutil.rmtree(temp, ignore_errors=True)
    assert not processes_mentioning(str(temp)), "the foreign cluster outlived its test"


def listening_sockets(root: Path) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every listening TCP socket, and every unconnected UDP
    socket, of the driver (this process) and of the Ray cluster it started."""
    me = psutil.Process()
    procs = {p.pid: p for p in [me, *me.children(recursive=True), *processes_mentioning(str(root))]}
    found = []
    for proc in procs.values():
        try:
            name = proc.name()
            for conn in proc.net_connections(kind="inet"):
                udp = conn.type == socket.SOCK_DGRAM and not conn.raddr
                if conn.status == psutil.CONN_LISTEN or udp:
                    found.append((name, conn.laddr.ip, conn.laddr.port))
        except psutil.NoSuchProcess:
            continue
    return found


class Inspecting(RayExecutor):
    """Looks at the cluster after the cells ran, while it is still up."""

    def _run(self, ray, cell_dirs, events):
        super()._run(ray, cell_dirs, events)
        self.gcs = ray.get_runtime_context().gcs_address
        self.root = self.cluster_dir
        self.token_mode = stat.S_IMODE((self.root / "auth_token").stat().st_mode)
        self.root_mode = stat.S_IMODE(self.root.stat().st_mode)
        self.session = (self.root / "ray" / "session_latest").resolve()
        # Agents start in the background; the runtime-env agent (and the dashboard agent, with
        # Ray's grpc dependency installed) must be listening before the check means anything.
        need = {"ray::RuntimeEnvAgent"} | ({"ray::DashboardAgent"} if _has("grpc") else set())
        deadline = time.monotonic() + 90
        while True:
            self.sockets = listening_sockets(self.root)
            if need <= {name for name, _, _ in self.sockets} or time.monotonic() > deadline:
                break
            time.sleep(1)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_own_cluster_is_loopback_only_private_and_ignores_another_cluster(
    foreign, make_study, fake_env, monkeypatch
):
    # A shell set up for the foreign cluster: Ray alone would join it (and fail on num_cpus).
    monkeypatch.setenv("RAY_ADDRESS", foreign["address"])
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(foreign["token"]))
    home_token = Path.home() / ".ray" / "auth_token"
    had_home_token = home_token.exists()
    executor = Inspecting(runner="sweep_support:ok")
    started = time.monotonic()
    states = run_sweep(make_study(), executor=executor)
    print(f"own cluster: {time.monotonic() - started:.1f} s; listening: {sorted(set(executor.sockets))}")

    assert set(states.values()) == {"done"} and len(states) == 3
    assert executor.gcs.rsplit(":", 1)[1] != str(foreign["port"])  # its own cluster, not the foreign one
    names = {name for name, _, _ in executor.sockets}
    assert {"gcs_server", "raylet", "ray::RuntimeEnvAgent"} <= names, executor.sockets
    exposed = [s for s in executor.sockets if not is_loopback(s[1])]
    assert not exposed, f"listening beyond loopback: {exposed}"
    # Ray's session dir (logs, sockets, port files) is inside a directory only we can enter.
    assert executor.root_mode == 0o700 and executor.token_mode == 0o600
    assert executor.session.is_relative_to(executor.root) and executor.session.name.startswith("session_")
    assert home_token.exists() == had_home_token  # no token written to ~/.ray
    # Everything is gone afterwards, and the caller's environment is as it was.
    assert executor.cluster_dir is None and not executor.root.exists()
    time.sleep(1)
    assert not processes_mentioning(str(executor.root))
    assert os.environ["RAY_ADDRESS"] == foreign["address"]
    assert os.environ["RAY_AUTH_TOKEN_PATH"] == str(foreign["token"])
    assert "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in os.environ
    with socket.create_connection(("127.0.0.1", foreign["port"]), timeout=5):
        pass  # the foreign cluster is untouched


JOIN = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from plw.experiment.driver import run_sweep
    from plw.experiment.study import load_study
    states = run_sweep(load_study(Path(sys.argv[1])), executor="ray", ray_address=sys.argv[2],
                       runner="sweep_support:ok")
    print(sorted(states.values()))
    """
)


def test_ray_address_joins_that_cluster(foreign, make_study, tmp_path):
    study = make_study()
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study.model_dump(mode="json")))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(LOOPBACK_ENV, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(foreign["token"]),
               PYTHONPATH=pythonpath(HERE))  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", JOIN, str(path), foreign["address"]], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "['done', 'done', 'done']"
    assert "Connected to Ray cluster" in proc.stderr and "Started a local Ray instance" not in proc.stderr


def test_unreachable_ray_address_is_one_line_and_exit_2(make_study, tmp_path):
    study = make_study()
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study.model_dump(mode="json")))
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "plw", "sweep", str(path), "--executor", "ray", "--ray-address", address],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--ray-address {address}" in lines[0], lines
    assert elapsed < 60
    assert not (study.directory() / "cells").exists()  # refused before any work


@pytest.fixture
def silent_server():
    """A TCP server on the address Ray would dial for 127.0.0.1 that accepts and never answers."""
    host, _ = ray_target(ray, "127.0.0.1:1")
    server = socket.create_server((host, 0))
    held = []
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"{host}:{server.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_an_address_that_never_answers_fails_in_bounded_time(silent_server):
    started = time.monotonic()
    with pytest.raises(PLWError, match=f"--ray-address {silent_server}: .*no answer within 1 s"):
        check_address(ray, silent_server, timeout=1)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("nonsense", "expected host:port, ray://host:port or auto"),
        ("ray://", "expected host:port, ray://host:port or auto"),
        ("ray://127.0.0.1:{port}", "no Ray cluster answers at 127.0.0.1:{port}: Connection refused"),
    ],
)
def test_bad_addresses_are_one_line_errors(address, expected):
    port = free_port()
    with pytest.raises(PLWError) as err:
        RayExecutor(address.format(port=port))
    message = str(err.value)
    assert "\n" not in message and expected.format(port=port) in message


def test_auto_needs_a_cluster_to_find(monkeypatch, tmp_path):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))  # where `ray start` would have recorded one
    # `auto` also takes any GCS process running here (the foreign one, other users' clusters).
    monkeypatch.setattr("ray._private.services.find_gcs_addresses", lambda: [])
    with pytest.raises(PLWError, match="--ray-address auto: no running Ray cluster found"):
        check_address(ray, "auto")
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")
    assert ray_target(ray, "auto")[1] == 6379


def test_no_address_or_local_checks_nothing():
    assert RayExecutor().address is None and RayExecutor("local").address is None
