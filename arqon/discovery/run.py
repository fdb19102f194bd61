"""A discovery run: the search's generations, then the gates for its best candidates, then promotion into the catalog.

Every evaluation is a task with a key; a task already in the journal is not run again (its journaled result is used),
so a resumed run, and a finished one run again, compute everything from the same results in the same order. Seeds
are derived from the spec's seed and the task's place (generation and index; or the gate seed's number, the same for
every candidate and the baseline: paired samples), never from time or completion order.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import attrs
import msgspec
import numpy as np

from arqon.config import ConfigError
from arqon.discovery import engines, gates
from arqon.discovery.journal import Journal, JournalRefused
from arqon.discovery.search import make_search, strategy_of
from arqon.discovery.spec import Spec, load_spec, spec_digest
from arqon.outputs import private_folder


def derive_seed(seed: int, *place: int) -> int:
    """A task's seed: 63 bits from NumPy's SeedSequence over the spec's seed and the task's place."""
    return int(np.random.SeedSequence([seed, *place]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def variant_id(variant: dict) -> str:
    """8 hex digits naming a variant by its knob values (the same variant always gets the same)."""
    return hashlib.sha256(msgspec.json.encode(variant, order="sorted")).hexdigest()[:8]


@attrs.frozen
class Candidate:
    """One variant sent through the gates: its rank, knobs, search objective (mean over its search evaluations),
    evidence records (one per gate, in order) and where it was promoted (``id@version``, or "")."""
    rank: int
    variant: dict
    objective: float
    evidence: list
    promoted: str = ""

    @property
    def failed_gate(self) -> str:
        """The first gate that failed, or ""."""
        return next((r["gate"] for r in self.evidence if r["verdict"] == "fail"), "")


@attrs.frozen
class Outcome:
    """What a run found: every search evaluation (``generation``, ``index``, ``variant``, ``seed``, ``metrics`` or
    ``error``, ``objective``), the baseline's search-free figures, the gated candidates, and the digest."""
    spec: Spec
    out: Path
    strategy: str
    evaluations: list
    baseline: dict
    candidates: list
    digest: str
    finished_before: bool
    ran: int  # evaluations run by this call (0 for a finished run)


class _Runner:
    """Runs tasks through the journal: journaled ones are taken from it, the others run on the executor."""

    def __init__(self, journal: Journal, make_executor, chunk: int, progress: bool):
        self.journal, self.make_executor, self.chunk, self.progress = journal, make_executor, chunk, progress
        self.done = {f["key"]: f for f in journal.frames if f.get("t") == "eval"}
        self.executor = None
        self.ran = 0

    def run(self, tasks: list[tuple[str, tuple]], what: str) -> list:
        """``tasks``: (key, task) pairs; returns (result, error) per task, in order."""
        out: list = [None] * len(tasks)
        todo = []
        for i, (key, task) in enumerate(tasks):
            frame = self.done.get(key)
            if frame is None:
                todo.append(i)
            elif (frame["variant"], frame["seed"]) != (task[3], task[4]):
                raise JournalRefused(f"{self.journal.path}: task {key} was journaled with another variant or seed")
            else:
                out[i] = (frame["result"], frame["error"])
        if not todo:
            return out
        if self.executor is None:
            self.executor = self.make_executor()
        bar = _bar(len(todo), what) if self.progress else None

        def commit(j: int, result: tuple) -> None:
            key, task = tasks[todo[j]]
            frame = {"t": "eval", "key": key, "variant": task[3], "seed": task[4], "result": result[0],
                     "error": result[1]}
            self.journal.append(frame)
            self.done[key] = frame
            out[todo[j]] = result
            if bar is not None:
                bar.update()

        try:
            engines.run_in_order(self.executor, [tasks[i][1] for i in todo], self.chunk, commit)
        finally:
            self.journal.sync()
            if bar is not None:
                bar.close()
        self.ran += len(todo)
        failed_imports = [out[i][1] for i in todo if out[i][1] and out[i][1].startswith("cannot import ")]
        if failed_imports:
            raise ConfigError(f"{failed_imports[0]} (the spec's `path` lists the folders searched first)")
        return out


def _bar(total: int, what: str):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=what, unit="eval", leave=False)


def discover(source, out=None, workers: int = 1, scheduler: str | None = None, executor=None, resume: bool = False,
             chunk: int = 1, progress: bool = False) -> Outcome:
    """Run (or resume, or report) the discovery ``source`` describes (see ``arqon.discovery.spec.Spec``).
    ``out``: the run's folder (default ``<spec folder>/<name>.discovery``) holding its journal and evidence.
    Evaluations run on ``executor`` (any ``concurrent.futures.Executor``), else on the dask.distributed
    ``scheduler`` (``tcp://HOST:PORT``), else on ``workers`` local processes, ``chunk`` tasks per submission."""
    spec, folder = load_spec(source)
    out = private_folder(Path(out) if out is not None else folder / f"{spec.name}.discovery")
    digest = spec_digest(spec)
    journal = Journal.open(out / "journal", digest, resume)
    finished = journal.frames[-1].get("t") == "done"
    owned = []

    def make_executor():
        if executor is not None:
            return executor
        if scheduler is not None:
            made, client = engines.dask_executor(scheduler)
            owned.append(client.close)  # the connection only: the cluster is the user's
            return made
        made = engines.local_executor(workers)
        owned.append(made.shutdown)
        return made

    runner = _Runner(journal, make_executor, chunk, progress)
    try:
        if not finished:  # workers start while the search is set up
            runner.executor = make_executor()
        outcome = _pipeline(spec, folder, out, digest, runner, journal, finished)
    finally:
        for close in owned:
            close()
        journal.close()
    return outcome


def _tasks(spec: Spec, folders: list[str], label: str, variant: dict, scenario: dict, seeds: list[int],
           kind: str = "evaluate") -> list:
    target = spec.gates.check if kind == "check" else spec.evaluate
    return [(f"{kind}:{label}:{scenario['name']}:{s}", (kind, target, folders, variant, s, scenario)) for s in seeds]


def _pipeline(spec, folder, out, digest, runner: _Runner, journal: Journal, finished: bool) -> Outcome:
    folders = [str((folder / p).resolve()) for p in spec.path]
    strategy = strategy_of(spec)
    search = make_search(spec)
    nominal = {"name": "nominal"}
    evaluations = []
    for g in range(spec.generations):
        variants = search.ask()
        tasks = [(f"evaluate:search-{g}-{i}:nominal:{derive_seed(spec.seed, 0, g, i)}",
                  ("evaluate", spec.evaluate, folders, v, derive_seed(spec.seed, 0, g, i), nominal))
                 for i, v in enumerate(variants)]
        results = runner.run(tasks, f"generation {g + 1}/{spec.generations}")
        objectives = []
        for i, (v, (metrics, error)) in enumerate(zip(variants, results, strict=True)):
            if error is None and spec.objective not in metrics:
                error = f"no metric {spec.objective!r} (it returned {', '.join(metrics) or 'none'})"
            value = gates.mean_of(metrics, spec.objective) if error is None else math.nan
            objectives.append(value)
            evaluations.append({"generation": g, "index": i, "variant": v, "seed": tasks[i][1][4],
                                "metrics": metrics if error is None else None, "error": error, "objective": value})
        search.tell(objectives)
    ranked = _ranked(spec, evaluations)
    seeds = [derive_seed(spec.seed, 1, j) for j in range(spec.gates.seeds)]
    scenarios = [nominal, *spec.gates.scenarios] + ([{"name": "staging"}] if spec.gates.canary else [])
    base = _results(spec, folders, runner, "baseline", dict(spec.baseline), scenarios, seeds)
    candidates, passed = [], 0
    while passed < spec.gates.top and len(candidates) < min(len(ranked), spec.gates.most):
        batch = list(enumerate(ranked))[len(candidates):min(len(ranked), spec.gates.most, len(candidates) +
                                                               spec.gates.top - passed)]
        for (rank, (variant, objective)), mine in zip(batch, _results(
                spec, folders, runner, [f"gate-{variant_id(v)}" for _, (v, _) in batch], [v for _, (v, _) in batch],
                scenarios, seeds, checks=True), strict=True):
            evidence = [gates.correctness(spec, mine.get("check", [])), gates.constraints(spec, mine["nominal"]),
                        gates.compared(spec, "robustness", {s["name"]: (mine[s["name"]], base[s["name"]])
                                                            for s in spec.gates.scenarios}),
                        gates.compared(spec, "regression", {"nominal": (mine["nominal"], base["nominal"])}),
                        gates.canary(spec, mine.get("staging", []), base.get("staging", []))]
            candidates.append(Candidate(rank=rank, variant=variant, objective=objective, evidence=evidence))
            passed += not candidates[-1].failed_gate
    from arqon.discovery.promotion import promote_passing

    candidates = promote_passing(spec, folder, out, digest, candidates, journal)
    baseline = {"nominal": [gates.mean_of(r, spec.objective) for r in base["nominal"]]}
    run_digest = _digest(digest, evaluations, candidates)
    if not finished:
        journal.append({"t": "done", "digest": run_digest})
    return Outcome(spec=spec, out=out, strategy=strategy, evaluations=evaluations, baseline=baseline,
                   candidates=candidates, digest=run_digest, finished_before=finished, ran=runner.ran)


def _results(spec: Spec, folders: list[str], runner: _Runner, who, variants, scenarios: list, seeds: list,
             checks: bool = False):
    """The gate evaluations of one variant (``who`` a label) or of several (``who`` a list, one task batch for all):
    {scenario name (or "check"): [result or None, seed by seed]} for each."""
    many = isinstance(who, list)
    labels, variants = (who, variants) if many else ([who], [variants])
    tasks, where = [], []
    for label, variant in zip(labels, variants, strict=True):
        where.append({})
        for scenario in scenarios:
            where[-1][scenario["name"]] = len(tasks)
            tasks += _tasks(spec, folders, label, variant, scenario, seeds)
        if checks and spec.gates.check:
            where[-1]["check"] = len(tasks)
            tasks += _tasks(spec, folders, label, variant, {"name": "nominal"}, seeds, kind="check")
    results = runner.run(tasks, "gates")
    n = len(seeds)

    def cut(name: str, i: int) -> list:  # a check's (broken, error) pairs as they are; an evaluation's result or None
        part = results[i:i + n]
        return part if name == "check" else [r if e is None else None for r, e in part]

    out = [{name: cut(name, i) for name, i in w.items()} for w in where]
    return out if many else out[0]


def _ranked(spec: Spec, evaluations: list) -> list[tuple[dict, float]]:
    """The distinct variants of the search other than the baseline, in the order the gates see them: by their mean
    objective over their search evaluations (a failed evaluation makes a variant ineligible; earliest first among
    equals), the best of each combination of choice knobs first, so that near-copies of one design do not crowd
    out the others."""
    sense = 1.0 if spec.direction == "minimize" else -1.0
    seen: dict[bytes, list] = {}
    for e in evaluations:
        key = msgspec.json.encode(e["variant"], order="sorted")
        seen.setdefault(key, [e["variant"], []])[1].append(e["objective"])
    baseline = msgspec.json.encode(dict(spec.baseline), order="sorted")
    scored = [(v, math.fsum(vals) / len(vals)) for key, (v, vals) in seen.items()
              if key != baseline and all(math.isfinite(x) for x in vals)]
    order = sorted(range(len(scored)), key=lambda i: (sense * scored[i][1], i))
    choices = [k.name for k in spec.knobs if k.choices is not None]
    firsts, seen_designs = [], set()
    for i in order:
        design = msgspec.json.encode([scored[i][0][name] for name in choices])
        if design not in seen_designs:
            seen_designs.add(design)
            firsts.append(i)
    rest = [i for i in order if i not in set(firsts)]
    return [scored[i] for i in firsts + rest]


def _digest(spec_digest: str, evaluations: list, candidates: list) -> str:
    """sha256 over the spec's digest, every search evaluation (variant, seed, metrics or error), every candidate's
    evidence and where it was promoted, in order; nothing from a clock."""
    h = hashlib.sha256(spec_digest.encode())
    for e in evaluations:
        h.update(msgspec.msgpack.encode([e["generation"], e["index"], e["variant"], e["seed"], e["metrics"],
                                         e["error"]]))
    for c in candidates:
        h.update(msgspec.msgpack.encode([c.rank, c.variant, c.evidence, c.promoted]))
    return h.hexdigest()
