"""The Ray executor: every cell a Ray task with the CPUs/GPUs the study asks for.

Runs on an existing cluster (`--ray-address`, or one this process already joined with `ray.init`)
or starts a local one that listens on 127.0.0.1 only. On a multi-node cluster the study directory
(and the data and model paths) must be on a filesystem every node sees. Ray is an optional extra,
imported only here.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from plw.errors import PLWError
from plw.experiment.celldir import LOG
from plw.experiment.executor_local import Events, record_crash
from plw.experiment.worker import execute_cell


def import_ray():
    """The ray module, or a PLWError saying how to install it."""
    try:
        import ray
    except ImportError as err:
        raise PLWError(
            "the ray executor needs Ray: pip install 'plw[ray]' (or use --executor local)"
        ) from err
    return ray


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
        address: cluster address (`ray://host:10001`, `host:6379`, `auto`); None uses the cluster
            this process already joined, or starts a local one.
        cpus_per_cell: CPUs each task reserves.
        gpus_per_cell: GPUs each task reserves.
        runner: cell runner as "module:function" (None: the default runner).
        poll_interval: seconds between progress polls.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, cpus_per_cell: float = 1.0, gpus_per_cell: float = 0.0,
                 runner: str | None = None, poll_interval: float = 0.5):  # fmt: skip
        self.address, self.runner, self.poll_interval = address, runner, poll_interval
        self.cpus, self.gpus = cpus_per_cell, gpus_per_cell

    def _connect(self, ray) -> bool:
        """Join or start a cluster; True when this call started it (so we shut it down)."""
        if ray.is_initialized():
            return False
        if self.address:
            ray.init(address=self.address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
        return True

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
        started_here = self._connect(ray)
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
        finally:
            if started_here:
                ray.shutdown()

    @staticmethod
    def _outcome(ray, ref, cell_dir: Path) -> str:
        try:
            state = ray.get(ref)
        except Exception as err:  # the task's process died (OOM, segfault) or Ray lost it
            return record_crash(
                cell_dir, f"task failed in Ray: {type(err).__name__}: {str(err).splitlines()[0]}"
            )
        return state if state in ("done", "failed") else record_crash(cell_dir, f"returned {state!r}")
