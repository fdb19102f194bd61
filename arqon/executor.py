"""``Executor``: the Tier-1 safety executor's Python face. It is the only thing that changes live parameters."""

from __future__ import annotations

import enum
import math

import numpy as np

from arqon.config import ConfigError
from arqon.kernels import guard as g
from arqon.kernels import audit as audit_kinds
from arqon.kernels._jit import entry_point
from arqon.policy import SLO_OPS, Policy, load_policy, ordered_metrics
from arqon.tuner import Tuner

Flags = enum.IntFlag("Flags", {name: getattr(g, name) for name in (
    "NONFINITE", "NOT_ALLOWED", "OUT_OF_BOUNDS", "MAX_DELTA", "NOT_WHOLE", "NOT_APPROVED", "COOLDOWN", "DWELL", "RATE_LIMIT",
    "RISK_BUDGET", "HALTED", "SAFE_MODE", "REJECTED", "NO_CHANGE", "NOTHING_STAGED", "BAD_STATE", "APPLIED", "STAGE_PASSED",
    "PROMOTED", "SLO_BREACH", "CANARY_FAILED", "DEADLINE", "ROLLED_BACK", "ABORTED", "SAFE_MODE_ENTERED", "KILLED",
    "OPERATOR_RESUMED", "VARIANT_WITHDRAWN")} | {"STAGED": g.STAGED_EVENT, "PAUSED": g.PAUSED_EVENT, "RESUMED": g.RESUMED_ANALYSIS})
_FLAGS: dict[int, Flags] = {}
Flags.__doc__ = "Reasons (why a proposal was clipped or rejected) and events (what changed), as bit flags."


class Phase(enum.IntEnum):
    """The executor's state (the state machine in docs/executor.md): the known-good is live, a candidate is staged
    (not live), a candidate is live under canary, its canary is paused (no data yet), a rollback happened, or the kill
    switch halted everything."""

    KNOWN_GOOD = g.KNOWN_GOOD
    STAGED = g.STAGED
    CANARY = g.CANARY
    PAUSED = g.PAUSED
    ROLLED_BACK = g.ROLLED_BACK_PHASE
    HALTED = g.HALTED_PHASE


_OFFER, _PROPOSE, _APPLY, _OBSERVE = (entry_point(k) for k in (g.guard_offer, g.guard_propose, g.guard_apply,
                                                                 g.guard_observe))
_SNAPBACK, _KILL, _RESUME, _SHADOW, _SWAP = (entry_point(k) for k in (g.guard_snapback, g.guard_kill, g.guard_resume,
                                                                        g.guard_shadow, g.guard_swap))
_SET_VARIANTS = entry_point(g.guard_set_variants)


def _variant_ids(policy: Policy, catalog) -> tuple[str, ...]:
    """The catalog's approved in-scope variant ids (the variant column's values are their indices), or ()."""
    if catalog is None:
        if policy.variant is not None:
            raise ConfigError("policy: a `variant` section needs a catalog: Executor(policy, tuner, catalog=...)")
        return ()
    if policy.variant is None:
        raise ConfigError("policy: the executor was given a catalog but the policy allows no variant swap: add a "
                          "`variant` section")
    ids = tuple(catalog.ids)
    if not ids:
        raise ConfigError(f"catalog {catalog.name} v{catalog.version} has no approved variant in scope "
                          f"{catalog.scope}")
    if policy.variant.known_good is not None and policy.variant.known_good not in ids:
        raise ConfigError(f"policy: variant.known_good {policy.variant.known_good!r} is not an approved variant in "
                          f"scope (approved: {', '.join(ids)})")
    return ids


def variant_slots(policy: Policy, approved: int) -> int:
    """How many variant indices an executor keeps room for: the policy's ``variant.capacity``, else max(64, twice
    the ``approved`` variants at start)."""
    capacity = policy.variant.capacity
    if capacity is None:
        return max(64, 2 * approved)
    if capacity < approved:
        raise ConfigError(f"policy: variant.capacity {capacity} is smaller than the {approved} approved variants")
    return capacity


def build_guard_state(policy: Policy, tuner: Tuner | None, catalog=None) -> np.ndarray:
    """Allocate and fill an executor state for ``tuner``'s parameters (if any) and the variant of ``catalog`` (if
    any, as the last column, its approved variants in the first slots) under ``policy``; ConfigError if they
    disagree."""
    params = tuner.config.params if tuner is not None else []
    names = [p.name for p in params]
    unknown = sorted(set(policy.params) - set(names))
    if unknown:
        raise ConfigError(f"policy: params names parameters the tuner does not have: {', '.join(unknown)}")
    variants = _variant_ids(policy, catalog)
    if not params and not variants:
        raise ConfigError("an executor needs a tuner, a catalog, or both")
    d, slos = len(params) + bool(variants), policy.parsed_slos
    stages = policy.canary.stages if policy.canary else []
    slots = variant_slots(policy, len(variants)) if variants else 0
    state = g.new_guard_state(d, len(policy.metrics), len(slos), len(stages), slots)
    m = g.guard_matrix(state)

    baseline = dict(tuner.recommend()) if tuner is not None else {}
    for name, value in (policy.baseline or {}).items():
        if name not in baseline:
            raise ConfigError(f"policy: baseline names {name!r}, which the tuner does not have")
        baseline[name] = value
    for i, p in enumerate(params):
        rule = policy.params.get(p.name)
        if rule is None:
            raise ConfigError(f"policy: the tuner tunes {p.name!r} but params does not allow changing it; add it to "
                              "params, or drop it from the tuner")
        lo = p.min if rule.min is None else rule.min
        hi = p.max if rule.max is None else rule.max
        whole = (math.ceil(p.min), math.floor(p.max)) if p.integer else (p.min, p.max)  # what the tuner proposes
        if p.integer:  # the whole numbers inside the bounds
            lo, hi = math.ceil(lo), math.floor(hi)
        if whole[0] < lo or whole[1] > hi:
            raise ConfigError(f"policy: params.{p.name} bounds [{lo}, {hi}] do not contain the tuner's "
                              f"[{p.min}, {p.max}]: the tuner would propose values the executor never applies")
        value = baseline[p.name]
        if not (math.isfinite(value) and lo <= value <= hi):
            raise ConfigError(f"policy: baseline {p.name} = {value} is outside [{lo}, {hi}]")
        if p.integer and value != math.floor(value):
            raise ConfigError(f"policy: baseline {p.name} = {value}: {p.name} is an integer parameter")
        step = rule.max_delta if rule.max_delta is not None else (
            rule.max_delta_fraction * (hi - lo) if rule.max_delta_fraction is not None else g.NO_LIMIT)
        if p.integer and rule.max_delta is None and step < g.NO_LIMIT:
            step = max(math.floor(step), 1.0)  # a fraction of an integer range: the whole part, at least 1
        if p.integer and step < g.NO_LIMIT and step != math.floor(step):
            raise ConfigError(f"policy: params.{p.name} is an integer parameter: its max delta must be whole, got "
                              f"{step}")
        m[[g.SNAP0, g.SNAP1, g.BASELINE], i] = value
        m[g.LO, i], m[g.HI, i], m[g.MAX_STEP, i] = lo, hi, step
        m[g.ALLOWED, i], m[g.COOLDOWN_STEPS, i], m[g.UNTIL, i] = 1.0, rule.cooldown, g.NEVER
        m[g.WHOLE, i] = float(p.integer)
    if variants:
        v = d - 1
        known_good = variants.index(policy.variant.known_good) if policy.variant.known_good else 0
        m[[g.SNAP0, g.SNAP1, g.BASELINE], v] = known_good
        m[g.LO, v], m[g.HI, v], m[g.MAX_STEP, v] = 0.0, slots - 1.0, g.NO_LIMIT
        m[g.APPROVED, : len(variants)] = 1.0
        m[g.ALLOWED, v], m[g.COOLDOWN_STEPS, v], m[g.UNTIL, v] = 1.0, policy.variant.cooldown, g.NEVER
    index = {name: j for j, name in enumerate(policy.metrics)}
    for s, slo in enumerate(slos):
        m[g.SLO_METRIC, s], m[g.SLO_OP, s] = index[slo.metric], SLO_OPS[slo.op]
        m[g.SLO_LIMIT, s], m[g.SLO_RELATIVE, s] = slo.limit, float(slo.relative)
    for k, stage in enumerate(stages):
        m[g.STAGE_SAMPLES, k], m[g.STAGE_REGRESSION, k] = stage.min_samples, stage.max_regression

    h = g.guard_header(state)
    h["reject_mode"] = int(policy.mode == "reject")
    h["phase"], h["now"], h["last_apply"] = g.KNOWN_GOOD, g.NEVER, g.NEVER
    h["dwell"] = policy.cooldown
    h["cooldowns"] = int((m[g.COOLDOWN_STEPS, :d] > 0).any())
    h["wholes"] = int((m[g.WHOLE, : len(params)] != 0).any())  # the variant's index: checked by the approved set
    if policy.rate_limit:
        h["rate_applies"], h["rate_window"] = policy.rate_limit.applies, policy.rate_limit.window
    h["risk_budget"] = policy.risk_budget or 0
    h["deadline"], h["safe_mode_after"] = policy.progress_deadline, policy.safe_mode_after
    h["smoothing"] = policy.baseline_smoothing
    if policy.canary:
        h["judged"] = index[policy.canary.metric]
        h["judged_sense"] = 1.0 if policy.canary.direction == "minimize" else -1.0
    return state


class Executor:
    """Applies a tuner's proposals to live parameters under a policy: validate, clip or reject, stage, flip, canary,
    promote or roll back. ``live`` is what the system should run with; every call takes the caller's step ``now``.

    With ``catalog`` (an ``arqon.catalog.Catalog``) and a ``variant`` section in the policy, the snapshot's last column,
    ``variant``, is the index of the live variant in ``variants``: swapped under the same guardrails as the knobs
    (allowlist, cooldown, dwell, rate limit, canary, rollback to known-good, kill switch, snapback), atomically with
    them, and only ever to an ``approved`` one. ``use_catalog`` takes a newer catalog between steps: new variants get
    the next indices (an index never changes its variant, so the hot path's tables only grow); a variant no longer
    approved can never be live again. ``tuner`` may be None when only the variant is tuned (by a ``Selector``)."""

    def __init__(self, policy, tuner: Tuner | None = None, catalog=None):
        self.policy = load_policy(policy)
        self.variants = _variant_ids(self.policy, catalog)  # the names behind the variant column's indices
        self.builds = tuple((v.id, v.version) for v in catalog.variants) if self.variants else ()
        self._allowed = set(self.builds)  # the builds the catalog approves, as far as the executor took it
        self.catalog = catalog
        self._set_approved(self.variants)
        self.names = (tuner.names if tuner is not None else ()) + (("variant",) if self.variants else ())
        self._state = build_guard_state(self.policy, tuner, catalog)
        self._mat = g.guard_matrix(self._state)
        self._h = g.guard_header(self._state)
        self._d = len(self.names)
        self._metrics = np.full(self._mat.shape[1], np.nan)
        self._proposal = np.zeros(self._d)
        self._log = None  # an arqon.AuditLog that records every decision (set by AuditLog(..., executor=self))

    def _set_approved(self, approved) -> None:
        wanted = set(approved)
        self.approved = tuple(v for v in self.variants if v in wanted)  # may be live; in index order
        self._variant_index = {v: i for i, v in enumerate(self.variants) if v in self.approved}
        self._eligible = np.array([v in self._variant_index for v in self.variants], dtype=np.bool_)

    def use_catalog(self, catalog, now: int) -> Flags:
        """Take ``catalog`` (a newer version of the same catalog, loaded and verified for the same scope) between
        steps. Each of its approved builds (an id at a version) not seen before gets the next index, named by its id
        (``id@version`` when another build of that id already has an index: a new build of an id never takes over an
        old build's index); ``approved`` becomes its approved builds; a build it no longer approves is withdrawn: if
        known-good, the policy's known_good (or the first approved variant) takes that place; if live or staged,
        known-good goes live now (VARIANT_WITHDRAWN with ROLLED_BACK or ABORTED). ``builds[i]`` is index i's (id,
        version). A Selector over ``variants`` grows with ``selector.with_arms(variants)``. ConfigError, with nothing
        changed, for another catalog, an older version or the same version with other contents, or one approving
        nothing; with more builds than the policy's capacity, the withdrawals are made, the new builds are not added,
        and ConfigError says so. A narrowing by ``allow`` does not carry over: call ``allow`` again after this."""
        from arqon.catalog import Catalog

        if not isinstance(catalog, Catalog):
            raise TypeError(f"use_catalog: catalog must be an arqon.catalog.Catalog (from load_catalog), got "
                            f"{type(catalog).__name__}")
        if not self.variants:
            raise ConfigError("use_catalog: this executor was built without a catalog")
        old = self.catalog
        if (catalog.name, catalog.scope) != (old.name, old.scope):
            raise ConfigError(f"use_catalog: catalog {catalog.name!r} in scope {catalog.scope!r} is not the one in "
                              f"use ({old.name!r} in scope {old.scope!r})")
        if catalog.version < old.version or (catalog.version == old.version and catalog.digest != old.digest):
            raise ConfigError(f"use_catalog: catalog {catalog.name} v{catalog.version} is "
                              + ("older than" if catalog.version < old.version else "another file than")
                              + f" v{old.version}, the one in use")
        if not catalog.variants:
            raise ConfigError(f"use_catalog: catalog {catalog.name} v{catalog.version} approves no variant in scope "
                              f"{catalog.scope}: use kill() to stop the executor instead")
        wanted = [(v.id, v.version) for v in catalog.variants]
        new = [b for b in wanted if b not in self.builds]
        slots = int(self._h["slots"])
        before, after = ({v.key: v.lifecycle for v in c.all} for c in (old, catalog))
        transitions = [(key, before.get(key, "absent"), after.get(key, "absent"))
                       for key in [*after, *(k for k in before if k not in after)]
                       if before.get(key, "absent") != after.get(key, "absent")]
        if len(self.builds) + len(new) > slots:
            kept = [b for b in wanted if b in self.builds]
            withdrawn = [self.variants[i] for i, b in enumerate(self.builds) if self._eligible[i] and b not in wanted]
            if kept and withdrawn:  # safety first: what the new version retires is withdrawn anyway
                gone = {f"{i}@{v}" for i, v in self.builds if (i, v) in self._allowed and (i, v) not in wanted}
                self._set_variants(self.variants, self.builds, kept, now, allowed=set(kept),  # allow() cannot undo it
                                   transitions=[t for t in transitions if t[0] in gone],
                                   refused={"version": catalog.version, "digest": catalog.digest,
                                            "reason": f"more builds than variant.capacity {slots}"})
            raise ConfigError(
                f"use_catalog: {len(self.builds) + len(new)} builds in all, retired ones included, but this executor "
                f"has room for {slots} (policy variant.capacity): "
                + (f"withdrew {', '.join(withdrawn)}; " if kept and withdrawn else "nothing changed; ")
                + f"did not add {', '.join(i + '@' + str(v) for i, v in new)}")
        variants, builds = list(self.variants), list(self.builds)
        for build in new:
            variants.append(build[0] if build[0] not in variants else f"{build[0]}@{build[1]}")
            builds.append(build)
        return self._set_variants(tuple(variants), tuple(builds), wanted, now, catalog, set(wanted), transitions)

    def allow(self, variants, now: int) -> Flags:
        """Narrow (or widen back) the variants that may be live to ``variants`` (names of ``variants`` whose build the
        catalog approves): e.g. those whose envelope admits the hardware the process now runs on. The rest are
        withdrawn as by ``use_catalog`` (known-good goes live now if the live variant is among them). ValueError
        naming one the catalog does not approve, or for an empty set."""
        if not self.variants:
            raise ValueError("allow: this executor has no catalog")
        if isinstance(variants, str) or not isinstance(variants, (list, tuple, set, frozenset)):
            raise TypeError(f"allow: variants must be a list of variant names, got {type(variants).__name__}")
        choices = [n for n, b in zip(self.variants, self.builds) if b in self._allowed]
        unknown = sorted(set(variants) - set(choices))
        if unknown or not set(variants):
            raise ValueError(f"allow: {', '.join(map(repr, unknown)) or 'no variant'}: give one or more of the "
                             f"catalog's approved variants ({', '.join(choices)})")
        wanted = [b for n, b in zip(self.variants, self.builds) if n in set(variants)]
        return self._set_variants(self.variants, self.builds, wanted, now)

    def _set_variants(self, variants: tuple, builds: tuple, approved: list, now: int, catalog=None, allowed=None,
                      transitions=(), **extra) -> Flags:
        """Make the ``approved`` builds (among ``builds``, the new index order, named ``variants``) the set that may
        be live, in one kernel call; a withdrawn known-good is replaced by the policy's known_good if approved, else
        by the first approved. With ``catalog``, it becomes the one in use, and ``allowed`` the builds ``allow`` may
        choose from. Recorded in the audit log, if any, with the catalog's lifecycle ``transitions`` (and ``extra``
        in the new segment's header), once everything has changed; a log whose writer stopped refuses it first."""
        if self._log is not None:
            self._log.check_writer()
        approved_names = [variants[builds.index(b)] for b in approved]
        known_good = self.policy.variant.known_good
        fallback = variants.index(known_good if known_good in approved_names else
                                  next(v for v in variants if v in approved_names))
        mask = np.zeros(int(self._h["slots"]))
        mask[[builds.index(b) for b in approved]] = 1.0
        flags = _SET_VARIANTS(self._state, mask, fallback, int(now))
        if flags == g.BAD_STATE:
            raise ValueError("the executor state was refused (BAD_STATE): nothing changed")
        self.variants, self.builds = variants, builds
        self.catalog = catalog or self.catalog
        self._allowed = self._allowed if allowed is None else allowed
        self._set_approved(approved_names)
        if self._log is not None:
            self._log.record_variants(transitions, now, flags, **extra)
        return self._named_flags(flags)

    def _named_flags(self, flags: int) -> Flags:
        named = _FLAGS.get(flags)
        if named is None:  # building an IntFlag from an int costs about 0.3 us: each value is built once
            named = _FLAGS[flags] = Flags(flags)
        return named

    def _decided(self, kind: int, now: int, flags: int) -> Flags:
        if self._log is not None:
            self._log.record_guard(kind, now, flags)
        return _FLAGS.get(flags) or self._named_flags(flags)

    @property
    def state(self) -> np.ndarray:
        """The executor state (the whole float64 buffer), for ``arqon.kernels.guard`` kernels inside @njit code; a copy
        of it is a state too."""
        return self._state

    @property
    def live(self) -> np.ndarray:
        """A consistent copy of the live snapshot: read between two equal, even values of the write sequence, so a
        snapshot being written by another thread is never returned half-written."""
        h, m, d = self._h, self._mat, self._d
        while True:
            seq = int(h["seq"])
            if seq & 1:
                continue
            values = m[int(h["live"]), :d].copy()
            if int(h["seq"]) == seq:
                return values

    @property
    def baseline(self) -> dict:
        """The known-good values by name (the variant by its id): what a rollback, snapback or kill makes live."""
        return self._named(self._mat[g.BASELINE, : self._d])

    @property
    def variant(self) -> str:
        """The id of the live variant (ValueError when the executor has no catalog)."""
        if not self.variants:
            raise ValueError("variant: this executor has no catalog")
        return self.variants[int(self.live[-1])]

    def _named(self, row) -> dict:
        values = dict(zip(self.names, row.tolist(), strict=True))
        if self.variants:
            values["variant"] = self.variants[int(values["variant"])]
        return values

    def variant_index(self, variant: int | str) -> int:
        """The variant column's value for ``variant`` (an approved id, or the index of one); ValueError naming the
        approved ids for anything else."""
        if isinstance(variant, str):
            if variant in self._variant_index:
                return self._variant_index[variant]
        elif (isinstance(variant, (int, np.integer)) and 0 <= variant < len(self.variants)
              and self._eligible[variant]):
            return int(variant)
        raise ValueError(f"variant {variant!r} is not an approved variant in scope (approved: "
                         f"{', '.join(self.approved) or 'none: this executor has no catalog'})")

    @property
    def phase(self) -> Phase:
        """Where the state machine is now."""
        return Phase(int(self._h["phase"]))

    @property
    def generation(self) -> int:
        """Number of flips so far: every apply and every rollback."""
        return int(self._h["generation"])

    @property
    def safe_mode(self) -> bool:
        """True after ``safe_mode_after`` consecutive rollbacks: every proposal is refused until ``resume``."""
        return bool(self._h["safe_mode"])

    def counters(self) -> dict:
        """Totals since creation: proposals, rejected, applied, rollbacks, promoted, breaches."""
        h = self._h
        return {k: int(h[f"n_{k}"]) for k in ("proposals", "rejected", "applied", "rollbacks", "promoted", "breaches")}

    def _vector(self, x) -> np.ndarray:
        if isinstance(x, dict):
            missing = [n for n in self.names if n not in x]
            if missing or len(x) != self._d:
                raise ValueError(f"proposal must name exactly {list(self.names)}; missing {missing}")
            x = [self.variant_index(x[n]) if n == "variant" else x[n] for n in self.names]
        self._proposal[:] = x  # raises on a wrong length
        return self._proposal

    def swap(self, variant: int | str, now: int) -> Flags:
        """Offer the live knobs with ``variant`` (an id or index of ``variants``) as the live variant: ``offer``'s
        guardrails decide."""
        index = self._variant_index.get(variant) if isinstance(variant, str) else None
        if index is None:
            index = self.variant_index(variant)
        if self._log is not None:  # what guard_swap offers: the live snapshot with the variant replaced
            offered = self.live
            offered[-1] = index
            self._log.record_offered(offered, now)
        return self._decided(audit_kinds.OFFER, now, _SWAP(self._state, self._proposal, self._d - 1, index + 0.0,
                                                           int(now)))

    def offer(self, x, now: int) -> Flags:
        """Validate ``x`` (clip or reject), stage it and make it live, starting its canary."""
        x = self._vector(x)
        if self._log is not None:
            self._log.record_offered(x, now)
        return self._decided(audit_kinds.OFFER, now, _OFFER(self._state, x, int(now)))

    def propose(self, x, now: int) -> Flags:
        """Validate and stage ``x`` without making it live (``apply`` does that)."""
        x = self._vector(x)
        if self._log is not None:
            self._log.record_offered(x, now)
        return self._decided(audit_kinds.PROPOSE, now, _PROPOSE(self._state, x, int(now)))

    def apply(self, now: int) -> Flags:
        """Make the staged candidate live (one index flip), starting its canary; ``NOTHING_STAGED`` if there is none."""
        return self._decided(audit_kinds.APPLY, now, _APPLY(self._state, int(now)))

    def observe(self, metrics, now: int) -> Flags:
        """The live system's metrics at step ``now`` (a mapping by name or a sequence in ``policy.metrics`` order; NaN
        or a missing name means no data). A hard SLO breach rolls back in this call."""
        names = self.policy.metrics
        self._metrics[: len(names)] = ordered_metrics(metrics, names, "the policy declares")
        if self._log is not None:
            self._log.record_metrics(self._metrics[: len(names)], now)
        return self._decided(audit_kinds.OBSERVE, now, _OBSERVE(self._state, self._metrics, int(now)))

    def shadow(self, x, now: int) -> tuple[np.ndarray, Flags]:
        """Shadow mode: what ``offer(x)`` would make live, and why, without changing anything live."""
        out = np.zeros(self._d)
        return out, Flags(_SHADOW(self._state, self._vector(x), out, int(now)))

    def snapback(self, now: int) -> Flags:
        """Make the known-good snapshot live now, whatever the cooldowns, limits or analysis say."""
        return self._decided(audit_kinds.SNAPBACK, now, _SNAPBACK(self._state, int(now)))

    def kill(self, now: int) -> Flags:
        """Kill switch: known-good goes live and every proposal is refused until ``resume``."""
        return self._decided(audit_kinds.KILL, now, _KILL(self._state, int(now)))

    def resume(self, now: int) -> Flags:
        """The operator's way out of the kill switch and of safe mode."""
        return self._decided(audit_kinds.RESUME, now, _RESUME(self._state, int(now)))

    def step(self, tuner: Tuner | None, metrics, value: float, now: int, selector=None,
             reward: float | None = None) -> Flags:
        """One turn of measure, decide, apply. ``metrics``, ``value`` (the tuner's cost) and ``reward`` (the
        selector's; None: nothing was measured for it, e.g. the context changed) were measured with the snapshot live
        before this call. The tuner is told ``value`` only if the live knobs are its pending proposal, and the
        selector ``reward`` only if the live variant is its arm out;
        otherwise the proposal (the arm) stays pending while the executor moves toward it within the policy. Then the
        metrics are observed (which may roll back) and the next proposal and arm are offered together."""
        if selector is not None and selector.names != self.variants:
            raise ValueError(f"selector: its arms {list(selector.names)} are not the executor's variants "
                             f"{list(self.variants)}, in that order (after use_catalog: selector.with_arms(variants))")
        if tuner is None and selector is None:
            raise ValueError("step: pass a tuner, a selector, or both")
        measured = self.live
        if tuner is not None:
            source = tuner if self._log is None else self._log  # the log's ask/tell are the tuner's, recorded
            if np.array_equal(measured[: len(tuner.names)], source.ask()):
                source.tell(value)
        arm = None
        if selector is not None:
            eligible = None if len(self.approved) == len(self.variants) else self._eligible  # None: the fast path
            arm = selector.pending
            if arm is not None and arm == int(measured[-1]) and reward is not None:
                arm = selector.step(reward, eligible=eligible) if eligible is not None else selector.step(reward)
            elif arm is None or not self._eligible[arm]:  # none out, or one withdrawn since it was chosen
                arm = selector.select(eligible=eligible)
        flags = self.observe(metrics, now)
        proposal = self._proposal
        proposal[:] = self.live
        if tuner is not None:
            proposal[: len(tuner.names)] = source.ask()
        if arm is not None:
            proposal[-1] = arm
        if self._log is not None:
            self._log.record_offered(proposal, now)
        return flags | self._decided(audit_kinds.OFFER, now, _OFFER(self._state, proposal, int(now)))
