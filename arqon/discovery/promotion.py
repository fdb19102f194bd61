"""Gate 6 and promotion: the candidates that passed gates 1-5 enter the spec's catalog as ``candidate`` (with an
``approval`` section: ``approved``, then the catalog signed by the spec's keys and verified k-of-n).

A promoted variant's payload is ``ID.vVERSION.json`` beside the catalog: its knobs and the evidence records of gates
1-5, so the catalog's signature (over the payload's sha256) covers the evidence: an edited evidence file, like an
edited signature, makes the loader refuse the catalog. Idempotent: a variant already in the catalog with the same
payload is not added again, so a resumed run promotes nothing twice. A finished run's promotions come from its
journal and the catalog is not touched again.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import attrs

from arqon import catalog as cat
from arqon.discovery.gates import record
from arqon.outputs import open_private, private_folder


def _figures(c) -> dict:
    """The headline figures for the catalog's evidence record (finite numbers by name)."""
    out = {"objective": c.objective}
    for r in c.evidence:
        if r["gate"] in ("regression", "robustness") and r["verdict"] == "pass":
            for scenario, f in r["figures"].items():
                out[f"p_{scenario}"] = f["p"]
                out[f"median_{scenario}"] = f["candidate_median"]
                out[f"baseline_{scenario}"] = f["baseline_median"]
    return {k: v for k, v in out.items() if isinstance(v, (int, float)) and math.isfinite(v)}


def payload_bytes(spec, spec_digest: str, c) -> bytes:
    """The payload of a promoted variant: knobs, objective, spec digest and gates 1-5's evidence (canonical JSON)."""
    return cat.canonical({"knobs": c.variant, "objective": spec.objective, "spec": spec_digest,
                          "evidence": c.evidence}) + b"\n"


def write_evidence(out: Path, candidates: list) -> None:
    """``out/evidence/RANK-VARIANT.json``: each gated candidate's knobs and every evidence record, for people."""
    from arqon.discovery.run import variant_id

    folder = private_folder(out / "evidence")
    for c in candidates:
        with open_private(folder / f"{c.rank + 1:02d}-{variant_id(c.variant)}.json") as f:
            json.dump({"rank": c.rank + 1, "knobs": c.variant, "objective": c.objective, "promoted": c.promoted,
                       "evidence": c.evidence}, f, indent=2, sort_keys=True)
            f.write("\n")


def promote_passing(spec, folder: Path, out: Path, spec_digest: str, candidates: list, journal) -> list:
    """Gate 6 for every candidate (``skipped`` for those that failed an earlier gate) and the promotions; returns the
    candidates with their approval record and ``promoted``."""
    journaled = {f["rank"]: (f["record"], f["promoted"]) for f in journal.frames if f.get("t") == "promoted"}
    if len(journaled) < len(candidates):  # not every promotion was journaled: redo them (the catalog's steps are
        outcome = {}                      # idempotent), journaling the ones missing, in rank order
        for c in candidates:
            if c.failed_gate:
                outcome[c.rank] = (record("approval", "skipped", f"failed the {c.failed_gate} gate"), "")
            elif spec.promote is None:
                outcome[c.rank] = (record("approval", "skipped", "no `promote` section: no catalog written"), "")
        passing = [c for c in candidates if c.rank not in outcome]
        if passing:
            outcome.update(_promote(spec, folder, spec_digest, passing))
        for c in candidates:
            if c.rank not in journaled:
                journal.append({"t": "promoted", "rank": c.rank, "record": outcome[c.rank][0],
                                "promoted": outcome[c.rank][1]})
                journaled[c.rank] = outcome[c.rank]
        journal.sync()
    done = [attrs.evolve(c, evidence=[*c.evidence, journaled[c.rank][0]], promoted=journaled[c.rank][1])
            for c in candidates]
    write_evidence(out, done)
    return done


def _meta(spec, folder: Path, variant: dict) -> dict:
    """The catalog fields of a promoted variant: the spec's, its numeric knobs as the envelope's, and what the
    spec's ``describe`` adds."""
    from arqon.discovery.engines import resolve

    p = spec.promote
    extra = {}
    if p.describe is not None:
        extra = resolve(p.describe, [str((folder / f).resolve()) for f in spec.path])(dict(variant))
        if not isinstance(extra, dict):
            raise TypeError(f"{p.describe} returned {type(extra).__name__}, not a dict of catalog fields")
    envelope = {**extra.pop("envelope", {})}
    envelope["knobs"] = {k.name: [variant[k.name]] * 2 for k in spec.knobs if k.choices is None}
    return {"kind": p.kind, "scopes": list(p.scopes), **extra, "envelope": envelope}


def _same_knobs(catalog: Path, variants, vid: str, knobs: dict) -> str | None:
    """The key of a live variant of another id whose JSON payload (under 1 MiB) holds these ``knobs``, or None."""
    for v in variants:
        if v.lifecycle == "retired" or v.id == vid or v.payload.length > 1 << 20 or not v.payload.path.endswith(
                ".json"):
            continue
        try:
            held = json.loads((catalog.parent / v.payload.path).read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(held, dict) and held.get("knobs") == knobs:
            return v.key
    return None


def _enter(spec, folder: Path, path: Path, spec_digest: str, c) -> tuple[str, int]:
    """Add ``c`` to the catalog as a candidate (unless it is there with the same payload): its (id, version)."""
    from arqon.discovery.run import variant_id

    p = spec.promote
    data = payload_bytes(spec, spec_digest, c)
    sha = hashlib.sha256(data).hexdigest()
    vid = f"{p.prefix or spec.name}-{variant_id(c.variant)}"
    variants = cat.read_catalog(path).signed.variants
    same = [v for v in variants if v.id == vid and v.payload.sha256 == sha]
    if same:
        return vid, same[-1].version
    twin = _same_knobs(path, variants, vid, c.variant)
    if twin:
        raise cat.CatalogRefused(f"not added: {twin} in the catalog has the same knobs")
    version = max([v.version for v in variants if v.id == vid], default=0) + 1
    payload = path.parent / f"{vid}.v{version}.json"
    cat._write_atomically(payload, data)
    try:
        cat.add_variant(path, vid, version, payload, _meta(spec, folder, c.variant))
    except (cat.CatalogRefused, TypeError, ValueError) as e:
        payload.unlink()
        raise cat.CatalogRefused(f"{vid}@{version} not added: {e}") from None
    return vid, version


def _promote(spec, folder: Path, spec_digest: str, passing: list) -> dict:
    """Enter, approve and sign; {rank: (approval record, "id@version" or "")}."""
    p, a = spec.promote, spec.gates.approval
    path = folder / p.catalog
    if not path.exists():
        cat.init_catalog(path, spec.name)
    inputs = {"catalog": p.catalog} if a is None else {"catalog": p.catalog, "keys": len(a.keys),
                                                       "trust": len(a.trust), "threshold": a.threshold}
    out, entered = {}, {}
    for c in passing:
        try:
            entered[c.rank] = _enter(spec, folder, path, spec_digest, c)
        except (cat.CatalogRefused, TypeError, ValueError) as e:
            out[c.rank] = (record("approval", "fail", str(e), {}, inputs), "")
    if a is None:
        out.update({rank: (record("approval", "skipped", "no `gates.approval` declared: entered as a candidate", {},
                                  inputs), f"{vid}@{version}") for rank, (vid, version) in entered.items()})
        return out
    approved = {}
    for c in passing:
        if c.rank not in entered:
            continue
        vid, version = entered[c.rank]
        v = next(v for v in cat.read_catalog(path).signed.variants if (v.id, v.version) == (vid, version))
        try:
            if v.lifecycle == "candidate":
                cat.promote(path, vid, "approved", by=f"arqon discover {spec.name}", figures=_figures(c),
                            note="gates 1-5 passed; their evidence is in the payload", version=version)
            approved[c.rank] = f"{vid}@{version}"
        except cat.CatalogRefused as e:
            out[c.rank] = (record("approval", "fail", str(e), {}, inputs), f"{vid}@{version}")
    for key in a.keys:
        cat.sign_catalog(path, folder / key)
    try:
        loaded = cat.load_catalog(path, [folder / t for t in a.trust], threshold=a.threshold, state=False)
        verdict, why = "pass", (f"approved and signed; verified with {len(loaded.signers)} of {a.threshold} "
                                "required signatures")
    except cat.CatalogRefused as e:
        verdict = "pending" if len(a.keys) < a.threshold else "fail"
        why = (f"approved, signed by {len(a.keys)} of the {a.threshold} keys required; sign with `arqon catalog "
               f"sign` ({e})" if verdict == "pending" else f"the signed catalog does not verify: {e}")
    out.update({rank: (record("approval", verdict, why, {"threshold": a.threshold}, inputs), promoted)
                for rank, promoted in approved.items()})
    return out
