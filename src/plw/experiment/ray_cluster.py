"""Ray clusters for the Ray executor: join one by address (checked first), or start a private one.

Joins another cluster only when given its address (`--ray-address`); otherwise `local_cluster`
starts a private single-node cluster, whatever `RAY_ADDRESS` or `ray start` recorded: every port on
loopback, its files in a 0700 directory, token authentication with a fresh token; the cluster is
stopped and its files deleted when the sweep ends. Ray is an optional extra, imported only here and
in the executor.
"""

from __future__ import annotations

import contextlib
import importlib
import ipaddress
import os
import secrets
import shutil
import socket
import tempfile
import time
from pathlib import Path

from plw.errors import PLWError


def import_ray():
    """The ray module, or a PLWError saying how to install it."""
    try:
        import ray
    except ImportError as err:
        raise PLWError(
            "the ray executor needs Ray: pip install 'plw[ray]' (or use --executor local)"
        ) from err
    return ray


# How long `check_address` waits for a cluster to answer: `ray.init` itself waits many minutes for
# a GCS that accepts connections but never answers.
CONNECT_TIMEOUT_S = 10.0
# An HTTP/2 client preface and an empty SETTINGS frame: a gRPC server (a Ray GCS, a Ray client
# server) answers with a SETTINGS frame of its own at once.
_HTTP2_HELLO = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_ADDRESS_FORMS = "expected host:port, ray://host:port or auto"


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback IP address (127.0.0.0/8, ::1, or IPv4-mapped 127.x)."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return ip.is_loopback or bool(getattr(ip, "ipv4_mapped", None) and ip.ipv4_mapped.is_loopback)


def first_line(err: BaseException) -> str:
    return next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)


def ray_target(ray, address: str) -> tuple[str, int]:
    """The host and port `ray.init(address=...)` will dial: Ray reads `auto` from RAY_ADDRESS, what
    `ray start` recorded or a GCS running here, and swaps 127.0.0.1 / localhost for this node's
    address."""
    dial = address
    if address == "auto" and os.environ.get("RAY_ADDRESS", "").startswith("ray://"):
        dial = os.environ["RAY_ADDRESS"]
    canonicalize = getattr(getattr(ray._private, "services", None), "canonicalize_bootstrap_address", None)
    if dial.startswith("ray://"):
        target = dial.removeprefix("ray://")
    elif canonicalize is None:  # not in this Ray version: probe the address as given
        target = dial
    else:
        try:
            target = canonicalize(dial)
        except ConnectionError as err:  # `auto` found nothing
            raise PLWError(
                f"--ray-address {address}: no running Ray cluster found (RAY_ADDRESS is unset, "
                "`ray start` recorded none and no GCS runs here)"
            ) from err
        except Exception as err:
            raise PLWError(f"--ray-address {address}: {_ADDRESS_FORMS} ({first_line(err)})") from err
    host, sep, port = (target or "").rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit():
        raise PLWError(f"--ray-address {address}: {_ADDRESS_FORMS}")
    return host, int(port)


def _probe(host: str, port: int, timeout: float, greet: bool) -> str | None:
    """None when a gRPC server answers at host:port within `timeout` seconds, else why not."""
    deadline = time.monotonic() + timeout
    reply = b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            if not greet:
                return None
            sock.sendall(_HTTP2_HELLO)
            while len(reply) < 9:
                sock.settimeout(max(deadline - time.monotonic(), 0.01))
                chunk = sock.recv(9 - len(reply))
                if not chunk:
                    break
                reply += chunk
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as err:
        return err.strerror or type(err).__name__
    if len(reply) < 9 or reply[3] != 4:  # byte 3 of a frame header is its type; 4 is SETTINGS
        return "it does not answer as a Ray cluster (a GCS port is a gRPC server)"
    return None


def check_address(ray, address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise a one-line PLWError naming `address` unless a Ray cluster answers there in time.

    With TLS (RAY_USE_TLS) only the TCP connection is checked, since the greeting is plaintext.
    """
    host, port = ray_target(ray, address)
    tls = os.environ.get("RAY_USE_TLS", "").strip().lower() in ("1", "true", "yes")
    why = _probe(host, port, timeout, greet=not tls)
    if why:
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if where not in address and not address.startswith("auto"):
            where += " (where Ray dials it)"  # Ray swaps 127.0.0.1 / localhost for this node's address
        raise PLWError(f"--ray-address {address}: no Ray cluster answers at {where}: {why}")


def _set_env(values: dict[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _reload_auth(ray) -> None:
    """Make this process re-read Ray's auth settings from the environment (Ray caches them)."""
    raylet = ray._raylet
    if hasattr(raylet, "AuthenticationTokenLoader"):  # Ray versions with token authentication
        raylet.Config.initialize("")  # before the cache: see ray._private.authentication_test_utils
        raylet.AuthenticationTokenLoader.instance().reset_cache()


@contextlib.contextmanager
def _loopback_node_address():
    """Keep `ray.init(_node_ip_address="127.0.0.1")` at 127.0.0.1.

    Ray binds its servers to loopback only when the node address is 127.0.0.1, yet `ray.init`
    replaces 127.0.0.1 by the machine's external address unless Ray thinks multi-node clusters are
    off (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, read once when `ray` is imported, hence the constant
    for this process; Ray's child processes get the variable from the environment).
    """
    constants = importlib.import_module("ray._private.ray_constants")
    saved = constants.ENABLE_RAY_CLUSTER
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = saved


@contextlib.contextmanager
def local_cluster(ray):
    """Start a private single-node Ray cluster and join it; on exit stop it and delete its files.

    Every server of the cluster (GCS, raylet, object manager, workers, agents) listens on 127.0.0.1
    and the dashboard is off. `address="local"` never joins a cluster named by RAY_ADDRESS or
    recorded by `ray start` (in /tmp/ray). Ray makes every directory it creates world-writable, so
    its temp dir lives inside a mkdtemp directory (mode 0700), beside a fresh token (mode 0600) that
    Ray's token authentication uses instead of ~/.ray/auth_token. The environment is restored on exit.

    Yields the private directory. If Ray fails to start, the directory is kept for its logs.
    """
    root = Path(tempfile.mkdtemp(prefix="plw-ray-"))
    token = root / "auth_token"
    with os.fdopen(os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(secrets.token_hex(32))
    env = {"RAY_ADDRESS": None, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": None,
           "RAY_AUTH_TOKEN_PATH": str(token), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # fmt: skip
    saved = {key: os.environ.get(key) for key in env}
    _set_env(env)
    keep = False
    try:
        _reload_auth(ray)
        try:
            with _loopback_node_address():
                ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1",
                         _temp_dir=str(root / "ray"), log_to_driver=False)  # fmt: skip
        except Exception as err:
            keep = True
            raise PLWError(
                f"could not start a local Ray cluster: {first_line(err)} (Ray's logs: {root / 'ray'})"
            ) from err
        node = ray.util.get_node_ip_address()
        if not is_loopback(node):  # a Ray version that resolves the address differently
            raise PLWError(f"the local Ray cluster came up on {node}, not 127.0.0.1: stopped, nothing run")
        yield root
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()
        _set_env(saved)
        _reload_auth(ray)
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
