"""Execution backends: where the (config, seed) runs of a sweep execute.

Every backend takes a list of :class:`RunTask` and yields one :class:`RunOutcome` per
task as runs finish (in any order). Workers only compute: the outcome, including the
artifact bytes, flows back to the driver, which alone writes the store.

* :class:`LocalBackend` with ``workers=1`` runs in the calling process; with
  ``workers=N`` it uses a ``ProcessPoolExecutor`` started by ``forkserver`` (``spawn``
  where that is missing), each worker process with its own torch thread count.
* :class:`RayBackend` submits one Ray task per run to a Ray cluster (``address``) or
  to a local Ray instance it starts. Ray is the optional extra ``elulab[ray]``.

Every run is seeded by :func:`seed_everything` right before ``experiment.run``, and
runs with the same torch thread count on every backend, so a sweep gives the same
metrics wherever it runs (on CPU).

Example:
    >>> backend = LocalBackend(workers=1)
    >>> backend.describe()
    {'backend': 'local', 'workers': 1}
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import multiprocessing
import os
import pickle
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .api import RunContext, RunResult

__all__ = [
    "Backend",
    "BackendError",
    "LocalBackend",
    "RayBackend",
    "RunOutcome",
    "RunTask",
    "environment",
    "execute_task",
    "make_backend",
    "pack_tasks",
    "seed_everything",
]

ProgressFn = Callable[[float, float], None]


class BackendError(RuntimeError):
    """A backend cannot start (e.g. Ray is not installed); the message is one line."""


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global generator and torch (CPU and CUDA).

    Example:
        >>> import random; seed_everything(3); a = random.random()
        >>> seed_everything(3); a == random.random()
        True
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    import numpy as np

    np.random.seed(seed % 2**32)  # noqa: NPY002 -- the legacy global generator is what experiments use
    import torch

    torch.manual_seed(seed)


@functools.lru_cache(maxsize=1)
def _git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{rev}-dirty" if dirty else rev


@functools.lru_cache(maxsize=1)
def _static_environment() -> dict[str, Any]:
    import numpy
    import torch

    from .. import __version__

    return {
        "elulab": __version__,
        "git": _git_revision(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
    }


def environment(device: str = "cpu") -> dict[str, Any]:
    """Where a run executes: elulab version, git revision, torch, device, threads, ...

    Example:
        >>> sorted(environment())[:4]
        ['device', 'elulab', 'git', 'hostname']
    """
    import torch

    env = dict(_static_environment())
    env["device"] = device
    env["threads"] = torch.get_num_threads()
    env["pid"] = os.getpid()
    return env


@dataclass(frozen=True)
class RunTask:
    """One (config, seed) run to execute.

    Args:
        seed: the run's seed.
        experiment, config: what to run (in-process backends use them directly).
        payload: ``pickle.dumps((experiment, config))`` for other processes, set by
            :func:`pack_tasks`; it is unpickled in the worker after ``sys_path`` is set.
        threads: torch threads for the run.
        device: ``"cpu"`` or ``"cuda"``.
        data_dir: data root handed to the experiment (None: default lookup).
        sys_path: folders the worker appends to ``sys.path`` before unpickling, so
            that an experiment from a module outside the installed packages is found.
    """

    seed: int
    experiment: Any = None
    config: Any = None
    payload: bytes | None = None
    threads: int = 1
    device: str = "cpu"
    data_dir: str | None = None
    sys_path: tuple[str, ...] = ()


@dataclass
class RunOutcome:
    """What a worker sends back for one task."""

    seed: int
    status: str  # "completed" or "failed"
    result: RunResult | None
    error: str | None
    started_at: float
    finished_at: float
    env: dict[str, Any] = field(default_factory=dict)


def _failed(task: RunTask, error: str, started: float | None = None) -> RunOutcome:
    now = time.time()
    return RunOutcome(task.seed, "failed", None, error, started or now, now, {})


def execute_task(task: RunTask, progress: ProgressFn | None = None) -> RunOutcome:
    """Run one task in this process: seed, run, check the result, clean up.

    An exception raised by the experiment becomes a failed outcome carrying its
    traceback; ``KeyboardInterrupt`` propagates.
    """
    for p in task.sys_path:
        if p not in sys.path:
            sys.path.append(p)
    started = time.time()
    if task.payload is None:
        experiment, config = task.experiment, task.config
    else:
        try:
            experiment, config = pickle.loads(task.payload)
        except Exception as e:
            return _failed(task, f"cannot load the experiment in the worker: {e!r}", started)
    import torch

    started = time.time()  # loading the code is not part of the run
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(task.threads)
    workdir = Path(tempfile.mkdtemp(prefix=f"elulab-{experiment.name}-{task.seed}-"))
    result: RunResult | None = None
    error: str | None = None
    try:
        context = RunContext(
            workdir=workdir,
            device=task.device,
            data_dir=None if task.data_dir is None else Path(task.data_dir),
            progress=progress or (lambda done, total: None),
        )
        seed_everything(task.seed)
        result = experiment.run(config, task.seed, context)
        if not isinstance(result, RunResult):
            raise TypeError(
                f"{experiment.name}.run returned {type(result).__name__}, expected RunResult"
            )
        _check_result(result)
        env = environment(task.device)
    except Exception:
        result, error = None, traceback.format_exc()
        env = environment(task.device)
    finally:
        torch.set_num_threads(previous_threads)
        shutil.rmtree(workdir, ignore_errors=True)
    status = "completed" if error is None else "failed"
    return RunOutcome(task.seed, status, result, error, started, time.time(), env)


def pack_tasks(tasks: Sequence[RunTask]) -> list[RunTask]:
    """Tasks ready for another process: experiment and config pickled into ``payload``.

    Raises:
        BackendError: the experiment cannot be pickled (e.g. defined in ``__main__``
            or inside a function): define it in an importable module.
    """
    blobs: dict[int, bytes] = {}
    packed = []
    for t in tasks:
        if t.payload is not None:
            packed.append(t)
            continue
        key = id(t.experiment) ^ id(t.config)
        if key not in blobs:
            try:
                blobs[key] = pickle.dumps((t.experiment, t.config))
            except Exception as e:
                name = getattr(t.experiment, "name", type(t.experiment).__name__)
                raise BackendError(
                    f"experiment {name!r} cannot be sent to worker processes ({e}); "
                    "define it at the top level of an importable module"
                ) from None
        packed.append(dataclasses.replace(t, experiment=None, config=None, payload=blobs[key]))
    return packed


def _check_result(result: RunResult) -> None:
    """Fail in the worker, with a clear message, on a result the store cannot hold."""
    import json

    for k, v in result.metrics.items():
        try:
            float(v)
        except (TypeError, ValueError):
            raise TypeError(f"metric {k!r} is {v!r}, not a number") from None
    try:
        json.dumps(result.to_json(), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"the RunResult is not JSON-able (series/tables): {e}") from None
    for name, data in result.artifacts.items():
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"artifact {name!r} must be bytes, got {type(data).__name__}")


class Backend:
    """The interface of every backend."""

    name: str = "backend"

    def run(
        self, tasks: Sequence[RunTask], progress: ProgressFn | None = None
    ) -> Iterator[RunOutcome]:
        """Execute ``tasks``; yield each outcome as soon as it is known.

        ``progress(done, total)`` is called from inside a run where the backend can
        (in-process only). Closing the iterator early (or an exception such as
        ``KeyboardInterrupt`` while waiting) stops the runs still going.
        """
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What to record in the summary's environment."""
        return {"backend": self.name}

    def close(self) -> None:
        """Release workers (idempotent)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _watch_driver(pid: int) -> None:
    """End this worker when the driver is gone (e.g. ``kill -9``): nobody reads its result."""
    while True:
        time.sleep(0.5)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(70)
        except PermissionError:
            pass


def _init_worker(threads: int, driver_pid: int) -> None:
    # Ctrl-C goes to the driver, which stops the pool; workers must not die mid-write.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_driver, args=(driver_pid,), daemon=True).start()
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _mp_context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        # workers fork from a server that has already imported torch: fast start-up
        ctx.set_forkserver_preload(["elulab.lab.backends", "torch"])
        return ctx
    return multiprocessing.get_context("spawn")


class LocalBackend(Backend):
    """Runs on this machine: in-process (``workers=1``) or in ``workers`` processes.

    The worker processes start on the first sweep and are kept for the next ones
    (e.g. every experiment of ``elulab reproduce``) until :meth:`close`.

    Args:
        workers: number of worker processes; 1 runs every task in the calling process.
        threads: torch threads per worker process (used to start the pool; each task
            also sets its own).
    """

    name = "local"

    def __init__(self, workers: int = 1, threads: int = 1) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        self.workers = workers
        self.threads = threads
        self._pool: ProcessPoolExecutor | None = None

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "workers": self.workers}

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=_mp_context(),
                initializer=_init_worker,
                initargs=(self.threads, os.getpid()),
            )
        return self._pool

    def run(
        self, tasks: Sequence[RunTask], progress: ProgressFn | None = None
    ) -> Iterator[RunOutcome]:
        if self.workers == 1:
            for task in tasks:
                yield execute_task(task, progress)
            return
        if not tasks:
            return
        pool = self._get_pool()
        futures: dict[Future[RunOutcome], RunTask] = {
            pool.submit(execute_task, t): t for t in pack_tasks(tasks)
        }
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    try:
                        outcome = fut.result()
                    except Exception as e:  # the worker process died (OOM, segfault, ...)
                        outcome = _failed(futures[fut], f"worker process failed: {e!r}")
                    yield outcome
        except BaseException:
            self._kill()
            raise
        finally:
            if pending:  # the consumer stopped early
                self._kill()
            elif self._pool is not None and getattr(self._pool, "_broken", False):
                self._kill()  # a worker died: start a fresh pool next time

    def _kill(self) -> None:
        if self._pool is not None:
            _stop_pool(self._pool)
            self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel queued tasks and end the worker processes now."""
    # ProcessPoolExecutor has no public terminate(); its worker processes are in
    # ``_processes``. Without this a Ctrl-C would wait for every running task.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        with contextlib.suppress(Exception):
            p.kill()
    for p in processes:
        with contextlib.suppress(Exception):
            p.join(timeout=5)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BackendError(
            "the ray backend needs Ray, the optional extra: pip install 'elulab[ray]'"
        ) from None
    return ray


class RayBackend(Backend):
    """Runs each task as a Ray task (``num_cpus=1``).

    Args:
        address: a Ray cluster address (``"auto"``, ``"ray://host:10001"``, ...); None
            starts a local Ray instance with ``workers`` CPUs (stopped by :meth:`close`).
            When Ray is already initialised in this process, that instance is used.
        workers: CPUs of the local instance (default: all cores).
        threads: torch threads per run.
    """

    name = "ray"

    def __init__(
        self, address: str | None = None, workers: int | None = None, threads: int = 1
    ) -> None:
        if workers is not None and (
            isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
        ):
            raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
        self.address = address
        self.workers = workers
        self.threads = threads
        self._ray: Any = None
        self._started_here = False
        self._remote: Any = None

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "address": self.address, "workers": self.workers}

    def _ensure_started(self) -> Any:
        if self._ray is not None:
            return self._ray
        ray = _import_ray()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "logging_level": logging.ERROR,
                "log_to_driver": False,
                "configure_logging": True,
            }
            if self.address:
                kwargs["address"] = self.address
            else:
                kwargs["num_cpus"] = self.workers or os.cpu_count() or 1
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ray.init(**kwargs)
            except Exception as e:
                where = f"at {self.address}" if self.address else "locally"
                msg = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
                raise BackendError(f"cannot start Ray {where}: {msg}") from None
            self._started_here = True
        self._ray = ray
        self._remote = ray.remote(num_cpus=1, max_retries=0)(execute_task)
        return ray

    def run(
        self, tasks: Sequence[RunTask], progress: ProgressFn | None = None
    ) -> Iterator[RunOutcome]:
        if not tasks:
            return
        packed = pack_tasks(tasks)
        ray = self._ensure_started()
        refs = {self._remote.remote(t): t for t in packed}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    try:
                        outcome = ray.get(ref)
                    except Exception as e:  # worker died, cluster lost, ...
                        first = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
                        outcome = _failed(refs[ref], f"ray task failed: {first}")
                    yield outcome
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)

    def close(self) -> None:
        if self._ray is not None and self._started_here:
            self._ray.shutdown()
        self._ray = None
        self._started_here = False


BACKENDS: tuple[str, ...] = ("local", "ray")


def make_backend(
    name: str, *, workers: int | None = None, address: str | None = None, threads: int = 1
) -> Backend:
    """Build a backend by name (``"local"`` or ``"ray"``).

    Raises:
        ValueError: an unknown name, listing the allowed ones.
        BackendError: ``"ray"`` without Ray installed.
    """
    if name == "local":
        if address is not None:
            raise ValueError("--address is only for the ray backend")
        return LocalBackend(workers=workers or 1, threads=threads)
    if name == "ray":
        _import_ray()
        return RayBackend(address=address, workers=workers, threads=threads)
    raise ValueError(f"unknown backend {name!r}; allowed: {', '.join(BACKENDS)}")
