"""Where evaluations run: any ``concurrent.futures.Executor`` (local processes by default, a dask.distributed cluster
through ``Client.get_executor()``), in chunks of tasks, with results handed back in task order whatever the order
they complete in.

A task is ``(kind, target, folders, variant, seed, scenario)``; ``kind`` is ``evaluate`` (the user's
``evaluate(variant, seed, scenario)``) or ``check`` (the correctness gate's ``check(variant, seed)``). A worker imports
``target`` (``module:function``) with ``folders`` on ``sys.path`` and returns ``(metrics, None)`` or
``(None, error)``: an exception or a malformed result is the candidate's failure, never the run's.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import math
import multiprocessing
import os
import select
import sys
import threading
import traceback
from collections.abc import Callable

import numpy as np

from arqon.config import ConfigError, real

_IMPORTED: dict[str, Callable] = {}


def resolve(target: str, folders: list[str]) -> Callable:
    """The function ``module:function`` names, importing the module with ``folders`` first on ``sys.path``."""
    if target not in _IMPORTED:
        for folder in reversed(folders):
            if folder not in sys.path:
                sys.path.insert(0, folder)
        module, _, name = target.partition(":")
        function = getattr(importlib.import_module(module), name)
        if not callable(function):
            raise TypeError(f"{target} is not callable")
        _IMPORTED[target] = function
    return _IMPORTED[target]


def _as_samples(name: str, value) -> list[float]:
    """A metric's value (a number, or a list, tuple or 1-D array of numbers) as a non-empty list of finite floats."""
    values = value.tolist() if isinstance(value, np.ndarray) else value
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    out = [real(v, f"metric {name!r}") for v in values]
    if not out:
        raise ValueError(f"metric {name!r}: no samples")
    bad = next((x for x in out if not math.isfinite(x)), None)
    if bad is not None:
        raise ValueError(f"metric {name!r}: a sample is {bad}")
    return out


def run_task(task: tuple) -> tuple:
    """One task's ``(result, error)``: metrics as ``{name: [samples]}`` (evaluate) or the broken invariants'
    names (check)."""
    kind, target, folders, variant, seed, scenario = task
    try:
        function = resolve(target, folders)
    except Exception as e:  # the run's problem, but a worker reports it like any failure; the caller aborts
        return None, f"cannot import {target}: {type(e).__name__}: {e}"
    try:
        if kind == "check":
            broken = function(dict(variant), seed)
            if isinstance(broken, (str, bytes)) or not hasattr(broken, "__iter__"):
                raise TypeError(f"check returned {type(broken).__name__}, not a list of broken invariants' names")
            return sorted(str(b) for b in broken), None
        metrics = function(dict(variant), seed, dict(scenario))
        if not isinstance(metrics, dict) or not all(isinstance(k, str) for k in metrics):
            raise TypeError(f"evaluate returned {type(metrics).__name__}, not a dict of metrics by name")
        return {k: _as_samples(k, metrics[k]) for k in sorted(metrics)}, None
    except Exception as e:
        frame = traceback.extract_tb(e.__traceback__)[-1]
        return None, f"{type(e).__name__}: {e} ({frame.filename.rsplit('/', 1)[-1]}:{frame.lineno})"


def run_chunk(tasks: list) -> list:
    return [run_task(t) for t in tasks]


def local_executor(workers: int) -> cf.Executor:
    """``workers`` local processes, started by a fork server (no threads of this process are inherited) now, in the
    background, so that their start overlaps the caller's own setup."""
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload(["arqon.discovery.engines"])  # each worker forks with numpy imported
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=exit_with,
                                  initargs=(os.getpid(),))
    for _ in range(workers):
        pool.submit(_ready)
    return pool


def exit_with(parent: int) -> None:
    """A worker's initializer: exit as soon as ``parent`` (the process that made the pool) ends, so that a kill -9
    of ``arqon discover`` leaves no worker behind (a worker forked by the fork server is not the parent's child)."""
    try:
        fd = os.pidfd_open(parent)
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):  # no pidfd (not Linux 5.3+): the pool's own shutdown is all there is
        return

    def wait() -> None:
        select.select([fd], [], [])
        os._exit(1)

    threading.Thread(target=wait, name="arqon-parent-watch", daemon=True).start()


def _ready() -> None:
    """A worker's first task: importing this module (and what it imports) before the first evaluation arrives."""


def dask_executor(address: str):
    """An executor on the dask.distributed scheduler at ``address`` (``tcp://HOST:PORT``), and its client."""
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("--scheduler needs dask.distributed: pip install 'arqon[discovery]'") from None
    try:
        client = Client(address, timeout=10)
    except (OSError, TimeoutError) as e:
        raise ConfigError(f"--scheduler {address}: cannot connect: {e}") from None
    return client.get_executor(pure=False), client


def run_in_order(executor: cf.Executor, tasks: list, chunk: int, commit: Callable[[int, tuple], None]) -> list:
    """Run ``tasks`` on ``executor``, ``chunk`` tasks per submission; call ``commit(i, result)`` for task i as soon
    as tasks 0..i are all done, so that commits happen in task order whatever the completion order. Returns the
    results in task order. A failed submission (a worker lost) raises RuntimeError after the tasks committed so far."""
    results: list = [None] * len(tasks)
    done = [False] * len(tasks)
    futures = {executor.submit(run_chunk, tasks[i:i + chunk]): i for i in range(0, len(tasks), chunk)}
    committed = 0
    try:
        for future in cf.as_completed(futures):
            start = futures[future]
            try:
                out = future.result()
            except Exception as e:
                raise RuntimeError(f"evaluations {start}..{start + chunk - 1} were lost: {type(e).__name__}: {e}") \
                    from None
            for j, result in enumerate(out):
                results[start + j] = result
                done[start + j] = True
            while committed < len(tasks) and done[committed]:
                commit(committed, results[committed])
                committed += 1
    finally:
        for future in futures:
            future.cancel()
    return results
