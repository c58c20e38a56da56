"""The Ray executor: every cell a Ray task with the CPUs/GPUs the study asks for.

Which cluster: `plw.experiment.ray_cluster` (joined by address, or a private local one). On a
multi-node cluster the study directory (and the data and model paths) must be on a filesystem every
node sees. Ray is an optional extra, imported only here and there.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from plw.errors import PLWError
from plw.experiment.celldir import LOG
from plw.experiment.executor_local import Events, record_crash
from plw.experiment.ray_cluster import (  # noqa: F401 (check_address, is_loopback, ray_target: API)
    check_address,
    first_line,
    import_ray,
    is_loopback,
    local_cluster,
    ray_target,
)
from plw.experiment.worker import execute_cell


@contextlib.contextmanager
def _output_to(path: Path):
    """Send this process's stdout and stderr (file descriptors, so C libraries too) to `path`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def ray_cell(cell_dir: str, runner: str | None) -> str:
    """The body of a cell's Ray task: run it in this Ray worker, output to its worker.log."""
    path = Path(cell_dir)
    with _output_to(path / LOG):
        return execute_cell(path, runner)


class RayExecutor:
    """Run cells as Ray tasks, as many at once as the cluster's resources allow.

    Args:
        address: cluster to join (`ray://host:10001`, `host:6379`, `auto`), checked at once
            (`check_address`); None (or "local") uses the cluster this process already joined, or
            starts a private local one for the run (`local_cluster`), never one from RAY_ADDRESS.
        cpus_per_cell: CPUs each task reserves.
        gpus_per_cell: GPUs each task reserves.
        runner: cell runner as "module:function" (None: the default runner).
        poll_interval: seconds between progress polls.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, cpus_per_cell: float = 1.0, gpus_per_cell: float = 0.0,
                 runner: str | None = None, poll_interval: float = 0.5):  # fmt: skip
        # "local" is Ray's word for a new local cluster, which is what no address means here.
        self.address = None if address in (None, "", "local") else address
        self.runner, self.poll_interval = runner, poll_interval
        self.cpus, self.gpus = cpus_per_cell, gpus_per_cell
        self.cluster_dir: Path | None = None  # the private directory of our own cluster, while it runs
        if self.address:  # a wrong address fails here, before the driver takes the study's lock
            check_address(import_ray(), self.address)

    def _join(self, ray) -> None:
        """Join the cluster at `self.address`; a failure is one line naming the address."""
        try:
            ray.init(address=self.address, log_to_driver=False)
        except Exception as err:
            with contextlib.suppress(Exception):
                ray.shutdown()
            why = first_line(err)
            # A rejected token shows only deep in the cause's text, after Ray's retries.
            if "InvalidAuthToken" in f"{err} {err.__cause__}":
                why = "the cluster rejected the authentication token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH)"
            raise PLWError(f"--ray-address {self.address}: could not join the Ray cluster: {why}") from err

    def _check_fits(self, ray) -> None:
        total = ray.cluster_resources()
        for key, need, name in (("CPU", self.cpus, "cpus_per_cell"), ("GPU", self.gpus, "gpus_per_cell")):
            if need > total.get(key, 0):
                have = total.get(key, 0)
                raise PLWError(
                    f"resources.{name}: a cell asks for {need:g} {key}s, the Ray cluster has {have:g}"
                )

    def run(self, cell_dirs: list[Path], events: Events) -> None:
        """Submit every cell, report each as it ends; KeyboardInterrupt cancels the rest."""
        ray = import_ray()
        with contextlib.ExitStack() as stack:
            if not ray.is_initialized():
                if self.address:
                    self._join(ray)
                    stack.callback(ray.shutdown)
                else:
                    self.cluster_dir = stack.enter_context(local_cluster(ray))
                    stack.callback(setattr, self, "cluster_dir", None)
            self._run(ray, cell_dirs, events)

    def _run(self, ray, cell_dirs: list[Path], events: Events) -> None:
        pending: dict = {}
        try:
            self._check_fits(ray)
            task = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0)(ray_cell)
            for cell_dir in cell_dirs:
                pending[task.remote(str(cell_dir), self.runner)] = cell_dir
                events.started(cell_dir)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=self.poll_interval)
                events.poll()
                for ref in ready:
                    cell_dir = pending.pop(ref)
                    events.finished(cell_dir, self._outcome(ray, ref, cell_dir))
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise

    @staticmethod
    def _outcome(ray, ref, cell_dir: Path) -> str:
        try:
            state = ray.get(ref)
        except Exception as err:  # the task's process died (OOM, segfault) or Ray lost it
            return record_crash(
                cell_dir, f"task failed in Ray: {type(err).__name__}: {str(err).splitlines()[0]}"
            )
        return state if state in ("done", "failed") else record_crash(cell_dir, f"returned {state!r}")
