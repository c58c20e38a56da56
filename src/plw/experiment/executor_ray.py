"""The Ray executor: every cell a Ray task with the CPUs/GPUs the study asks for.

Which cluster: `plw.experiment.ray_cluster` (joined by address, or a private local one). On a
multi-node cluster the study directory (and the data and model paths) must be on a filesystem every
node sees. Ray is an optional extra, imported only here and there.

Two faults of real clusters are handled here:

- A cell whose worker process or node dies (Ray raises instead of returning the cell's state) is
  marked failed with the cause, then retried up to `max_retries` times (`resources.max_retries`),
  resuming its training from the last complete checkpoint; the other cells go on meanwhile.
- Preemption of the driver (`plw.preemption`): every running cell gets a `stop` file (a signal
  cannot reach a worker on another node), checkpoints at its next step boundary and returns
  "interrupted"; queued cells are cancelled; whatever is still running after the grace period
  (plus a margin for the workers' own exit) is cancelled by force.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from pathlib import Path

from plw import preemption
from plw.errors import PLWError
from plw.experiment.celldir import LOG, STOP, cell_state, read_status, reset_for_retry
from plw.experiment.executor_local import EXIT_MARGIN_S, Events, record_crash
from plw.experiment.ray_cluster import (  # noqa: F401 (check_address, is_loopback, ray_target: API)
    check_address,
    first_line,
    import_ray,
    is_loopback,
    local_cluster,
    ray_target,
)
from plw.experiment.worker import execute_cell
from plw.files import write_text_atomic


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


@contextlib.contextmanager
def _plw_logs():
    """plw's INFO logs (which checkpoint a training resumes from) to stderr, as in a worker subprocess:
    Ray's worker process leaves them at WARNING. Ray reuses the process, so undone afterwards."""
    logger, handler = logging.getLogger("plw"), logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def ray_cell(cell_dir: str, runner: str | None) -> str:
    """The body of a cell's Ray task: run it in this Ray worker, output to its worker.log."""
    path = Path(cell_dir)
    with _output_to(path / LOG), _plw_logs():
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
        max_retries: how many times a cell whose worker process or node died is run again.
    """

    name = "ray"

    def __init__(self, address: str | None = None, *, cpus_per_cell: float = 1.0, gpus_per_cell: float = 0.0,
                 runner: str | None = None, poll_interval: float = 0.5, max_retries: int = 2):  # fmt: skip
        # "local" is Ray's word for a new local cluster, which is what no address means here.
        self.address = None if address in (None, "", "local") else address
        self.runner, self.poll_interval = runner, poll_interval
        self.cpus, self.gpus, self.max_retries = cpus_per_cell, gpus_per_cell, max_retries
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
        """Submit every cell, report each as it ends (retrying lost ones); KeyboardInterrupt cancels
        the rest."""
        ray = import_ray()
        with contextlib.ExitStack() as stack:
            if not ray.is_initialized():
                if self.address:
                    self._join(ray)
                    stack.callback(ray.shutdown)
                else:
                    self.cluster_dir = stack.enter_context(local_cluster(ray))
                    stack.callback(setattr, self, "cluster_dir", None)
                preemption.reclaim()  # Ray's SIGTERM handler would end the driver without stopping cells
            self._run(ray, cell_dirs, events)

    def _run(self, ray, cell_dirs: list[Path], events: Events) -> None:
        pending: dict = {}
        tries: dict[Path, int] = {}
        stop_at: float | None = None  # when a preempted sweep gives up waiting for its cells
        try:
            self._check_fits(ray)
            task = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0)(ray_cell)

            def submit(cell_dir: Path) -> None:
                pending[task.remote(str(cell_dir), self.runner)] = cell_dir

            for cell_dir in cell_dirs:
                submit(cell_dir)
                events.started(cell_dir)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=self.poll_interval)
                events.poll()
                stop_at = self._preempt(ray, pending, stop_at)
                for ref in ready:
                    cell_dir = pending.pop(ref)
                    state, cause = self._outcome(ray, ref, cell_dir, stopping=stop_at is not None)
                    if cause is None or stop_at is not None or tries.get(cell_dir, 0) >= self.max_retries:
                        events.finished(cell_dir, state)
                        continue
                    tries[cell_dir] = tries.get(cell_dir, 0) + 1
                    attempt = reset_for_retry(cell_dir)
                    if hasattr(events, "retrying"):
                        events.retrying(cell_dir, cause, attempt)
                    submit(cell_dir)
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise

    def _preempt(self, ray, pending: dict, stop_at: float | None) -> float | None:
        """On a preemption request, ask running cells to stop and cancel queued ones (once); after
        the grace period, cancel what is left by force. Returns the deadline (None: no request)."""
        signal_name = preemption.requested()
        if signal_name is None:
            return stop_at
        if stop_at is None:
            for ref, cell_dir in pending.items():
                with contextlib.suppress(PLWError):  # a cell that cannot be told still gets cancelled
                    write_text_atomic(cell_dir / STOP, signal_name, mkdir=False)
                if read_status(cell_dir).get("state") != "running":
                    ray.cancel(ref)  # queued: it never starts (or sees its stop file if it just did)
            return time.monotonic() + preemption.grace_seconds() + EXIT_MARGIN_S
        if time.monotonic() > stop_at:
            for ref in pending:
                ray.cancel(ref, force=True)
        return stop_at

    @staticmethod
    def _outcome(ray, ref, cell_dir: Path, *, stopping: bool = False) -> tuple[str, str | None]:
        """The cell's state, and the cause when its worker process or node died (None otherwise)."""
        try:
            state = ray.get(ref)
        except ray.exceptions.TaskCancelledError:  # preempted before it finished: it reruns
            return "interrupted", None
        except Exception as err:  # the task's process died (OOM, SIGKILL, segfault) or its node did
            state = cell_state(cell_dir)
            if state in ("done", "failed", "interrupted"):  # it recorded its outcome, then died
                return state, None
            if stopping:  # lost while the sweep stops: left to resume in the next sweep
                return "interrupted", None
            cause = f"died in Ray: {type(err).__name__}: {first_line(err)}"
            return record_crash(cell_dir, cause), f"worker {cause}"
        if state in ("done", "failed", "interrupted", "disk_full"):
            return state, None
        return record_crash(cell_dir, f"returned {state!r}"), None
