"""The approved variant catalog: a signed, versioned, lifecycle-governed list of pre-built variants.

A catalog is one JSON file, ``{"signatures": [...], "signed": {...}}``, always written in one canonical form (msgspec,
keys sorted, no whitespace, one final newline), so a signature covers the file's exact bytes: the loader refuses a file
that is not in that form before it checks any signature. The ``signed`` part names the catalog, its ``version`` (raised
by the first edit after a signing), its expiry and its variants; each variant names its payload by a path relative to
the catalog, a sha256 and a length.

Loading (``load_catalog``) is TUF-style and needs no network: ed25519 signatures (PyNaCl, the ``catalog`` extra) by at
least ``threshold`` distinct trusted keys, an unexpired catalog, no rollback (a state file beside the trust keys keeps
the highest version accepted, its digest and every variant's lifecycle, so version N - 1, another catalog under an
accepted version, a retired variant brought back and an approved one dropped without retiring are refused), every live
payload's length and hash. A refusal is one ``CatalogRefused`` whose message names the reason.

Lifecycle: ``candidate -> approved -> retired``, nothing else; a candidate may be dropped. At most one version of an id
is approved at a time. The hot path sees only dense indices: ``Catalog.ids`` lists the approved variants in the
caller's scope, in catalog order, and a selector's arm ``i`` is ``Catalog.variants[i]`` (after a catalog change,
``Executor.variants[i]``: see ``Executor.use_catalog``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

import attrs
import msgspec
from msgspec import Meta

from arqon.config import ConfigError, decode

KINDS = ("quantization", "kernel", "early-exit", "adapter", "routing", "cache-policy", "custom")
LIFECYCLES = ("candidate", "approved", "retired")
NEXT = {"candidate": ("approved",), "approved": ("retired",), "retired": ()}  # the only legal transitions

Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]*\Z")]
Scope = Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_\-]*\Z")]
Hex64 = Annotated[str, Meta(pattern=r"^[0-9a-f]{64}\Z")]
Sha256 = Annotated[str, Meta(min_length=64, max_length=64)]  # compared with the payload's own hex digest
Bucket = Annotated[str, Meta(min_length=1, max_length=64)]
Finite = Annotated[float, Meta(ge=-1e300, le=1e300)]
NonNegative = Annotated[float, Meta(ge=0.0, le=1e300)]
Label = Annotated[str, Meta(max_length=200)]
STATE_FILE = "catalog-state.json"
DEFAULT_LIFETIME = dt.timedelta(days=90)


class CatalogRefused(ConfigError):
    """A catalog, a key or an edit was refused; the message names the file and the reason in one line."""


class _Struct(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Payload(_Struct):
    """The variant's artifact: ``path`` relative to the catalog's directory, its sha256 (hex) and its length."""
    path: Annotated[str, Meta(min_length=1, max_length=1024)]
    sha256: Sha256
    length: Annotated[int, Meta(ge=0, le=2**53)]


class Envelope(_Struct):
    """Where the variant may run: hardware classes (empty: any), a memory cap in bytes (0: none), and the safe
    [low, high] range of each of its own knobs."""
    hardware: list[Scope] = []
    memory_cap: Annotated[int, Meta(ge=0, le=2**53)] = 0
    knobs: dict[Id, Annotated[list[Finite], Meta(min_length=2, max_length=2)]] = {}


class Evidence(_Struct):
    """One lifecycle transition: to which state, by whom or what, when (UTC, ISO 8601), on what figures."""
    to: Literal["approved", "retired"]
    by: Annotated[str, Meta(min_length=1, max_length=200)]
    at: Annotated[str, Meta(min_length=20, max_length=32)]
    figures: dict[Id, Finite] = {}
    note: Label = ""


class Variant(_Struct):
    """One pre-built variant. ``latency`` is the expected latency in ns by context bucket; ``quality`` a proxy
    (higher is better)."""
    id: Id
    version: Annotated[int, Meta(ge=1, le=2**53)]
    payload: Payload
    kind: Literal["quantization", "kernel", "early-exit", "adapter", "routing", "cache-policy", "custom"] = "custom"
    lifecycle: Literal["candidate", "approved", "retired"] = "candidate"
    scopes: Annotated[list[Scope], Meta(min_length=1, max_length=16)] = msgspec.field(
        default_factory=lambda: ["staging"])
    envelope: Envelope = Envelope()
    latency: dict[Bucket, NonNegative] = {}
    quality: Finite | None = None
    evidence: list[Evidence] = []

    @property
    def key(self) -> str:
        """``id@version``: what identifies a variant across catalog versions."""
        return f"{self.id}@{self.version}"


class VariantMeta(_Struct):
    """What ``catalog add --meta FILE`` may set (JSON, TOML or YAML)."""
    kind: Literal["quantization", "kernel", "early-exit", "adapter", "routing", "cache-policy", "custom"] = "custom"
    scopes: Annotated[list[Scope], Meta(min_length=1, max_length=16)] = msgspec.field(
        default_factory=lambda: ["staging"])
    envelope: Envelope = Envelope()
    latency: dict[Bucket, NonNegative] = {}
    quality: Finite | None = None


class Body(_Struct):
    """The signed part of a catalog."""
    name: Id
    version: Annotated[int, Meta(ge=1, le=2**53)]
    expires: Annotated[str, Meta(max_length=32)] = ""
    variants: Annotated[list[Variant], Meta(max_length=100_000)] = []


class Signature(_Struct):
    keyid: Annotated[str, Meta(pattern=r"^[0-9a-f]{16}\Z")]
    sig: Annotated[str, Meta(pattern=r"^[0-9a-f]{128}\Z")]


class CatalogFile(_Struct):
    signed: Body
    signatures: list[Signature] = []


class _KeyFile(_Struct):
    keytype: Literal["ed25519"]
    public: Hex64
    seed: Hex64 | None = None


class _Accepted(_Struct):
    version: int
    digest: Hex64
    lifecycle: dict[str, Literal["candidate", "approved", "retired"]] = {}


class _State(_Struct):
    catalogs: dict[Id, _Accepted] = {}


def canonical(obj) -> bytes:
    """The one byte form of a catalog struct: msgspec JSON with sorted keys, no whitespace."""
    return msgspec.json.encode(obj, order="sorted")


def _nacl():
    try:
        import nacl.exceptions
        import nacl.signing
    except ImportError:
        raise CatalogRefused("signing and verifying catalogs needs PyNaCl: pip install 'arqon[catalog]'") from None
    return nacl


def _utc(text: str, what: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CatalogRefused(f"{what}: {text!r} is not an ISO 8601 time (e.g. 2027-01-31T00:00:00Z)") from None
    if when.tzinfo is None:
        raise CatalogRefused(f"{what}: {text!r} has no time zone (end it with Z for UTC)")
    return when.astimezone(dt.timezone.utc)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory, fsync'd and renamed over it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CatalogRefused(f"{path}: no such {what}") from None
    except OSError as e:
        raise CatalogRefused(f"{path}: cannot read the {what}: {e.strerror}") from None


def _decode(raw: bytes, type_, path: Path, what: str):
    try:
        return msgspec.json.decode(raw, type=type_)
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        raise CatalogRefused(f"{path}: not a valid {what}: {e}") from None


# --- keys -----------------------------------------------------------------------------------------------------------

def key_id(public: bytes) -> str:
    """A key's id: the first 16 hex digits of the sha256 of its 32 public bytes."""
    return hashlib.sha256(public).hexdigest()[:16]


def generate_key(path) -> str:
    """Write a new ed25519 key pair: ``path`` (the private seed, mode 0600) and ``path.pub``; refuse to overwrite
    either. Returns: the key id."""
    signing = _nacl().signing.SigningKey.generate()
    path, pub = Path(path), Path(f"{path}.pub")
    for p in (path, pub):
        if p.exists():
            raise CatalogRefused(f"{p}: already exists (a key is never overwritten)")
    public = bytes(signing.verify_key)
    private = canonical(_KeyFile(keytype="ed25519", public=public.hex(), seed=bytes(signing).hex())) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    _write_atomically(pub, canonical(_KeyFile(keytype="ed25519", public=public.hex())) + b"\n")
    return key_id(public)


def _load_key(path: Path, private: bool) -> _KeyFile:
    key = _decode(_read(path, "key file"), _KeyFile, path, "key file")
    if private and key.seed is None:
        raise CatalogRefused(f"{path}: a public key; signing needs the private key file (without .pub)")
    return key


def public_key(path) -> bytes:
    """The 32 public bytes in a key file (``KEY.pub`` or the private ``KEY``)."""
    return bytes.fromhex(_load_key(Path(path), private=False).public)


# --- editing (the CLI's verbs) ---------------------------------------------------------------------------------------

def read_catalog(path) -> CatalogFile:
    """Decode a catalog file without verifying it (for editing and ``show``): refused only when it is not a
    catalog in canonical form."""
    path = Path(path)
    raw = _read(path, "catalog")
    doc = _decode(raw, CatalogFile, path, "catalog")
    if canonical(doc) + b"\n" != raw:
        form = canonical(doc) + b"\n"
        at = next((i for i, (a, b) in enumerate(zip(raw, form)) if a != b), min(len(raw), len(form)))
        raise CatalogRefused(f"{path}: not in canonical form (it differs from its canonical bytes at byte {at}): "
                             "a catalog is edited only through `arqon catalog`")
    return doc


def _write_catalog(path: Path, doc: CatalogFile) -> None:
    _write_atomically(path, canonical(doc) + b"\n")


def _edited(doc: CatalogFile, variants: list[Variant]) -> CatalogFile:
    """The catalog with new variants: the first edit after a signing raises the version and drops the signatures
    (they covered the old bytes)."""
    version = doc.signed.version + 1 if doc.signatures else doc.signed.version
    return CatalogFile(signatures=[], signed=msgspec.structs.replace(doc.signed, version=version, variants=variants))


def init_catalog(path, name: str) -> None:
    """Write an empty, unsigned catalog ``name`` at version 1; refuse to overwrite a file."""
    path = Path(path)
    if path.exists():
        raise CatalogRefused(f"{path}: already exists")
    if not _valid_id(name):
        raise CatalogRefused(f"catalog name {name!r}: use letters, digits, '_', '.', '-' (a letter first, <= 64)")
    _write_catalog(path, CatalogFile(signed=Body(name=name, version=1)))


def _valid_id(text: str) -> bool:
    try:
        msgspec.convert(text, Id)
        return True
    except msgspec.ValidationError:
        return False


def _payload(catalog: Path, file: Path) -> Payload:
    """Hash ``file`` (inside the catalog's directory) into a Payload."""
    root = catalog.resolve().parent
    target = file.resolve()
    if not target.is_relative_to(root):
        raise CatalogRefused(f"{file}: a payload must be inside the catalog's directory {root}")
    data = _read(target, "payload")
    return Payload(path=target.relative_to(root).as_posix(), sha256=hashlib.sha256(data).hexdigest(),
                   length=len(data))


def add_variant(path, variant_id: str, version: int, payload, meta=None) -> Variant:
    """Add a candidate variant (``meta``: a VariantMeta source, see ``config.decode``). Refuses an existing
    (id, version), a version not above the id's others, and a payload outside the catalog's directory."""
    path = Path(path)
    doc = read_catalog(path)
    m = decode(meta, VariantMeta) if meta is not None else VariantMeta()
    if not _valid_id(variant_id):
        raise CatalogRefused(f"--id {variant_id!r}: use letters, digits, '_', '.', '-' (a letter first, <= 64)")
    same = [v.version for v in doc.signed.variants if v.id == variant_id]
    if same and version <= max(same):
        raise CatalogRefused(f"--version {version}: {variant_id} already has version {max(same)}; a new build takes "
                             "a higher version")
    try:
        variant = msgspec.convert({"id": variant_id, "version": version, "payload": _payload(path, Path(payload)),
                                   **msgspec.structs.asdict(m)}, Variant, from_attributes=True)
    except msgspec.ValidationError as e:
        raise CatalogRefused(f"variant {variant_id}: {e}") from None
    _write_catalog(path, _edited(doc, [*doc.signed.variants, variant]))
    return variant


def _find(doc: CatalogFile, variant_id: str, version: int | None) -> int:
    hits = [i for i, v in enumerate(doc.signed.variants) if v.id == variant_id and version in (None, v.version)]
    if not hits:
        known = ", ".join(v.key for v in doc.signed.variants) or "none"
        raise CatalogRefused(f"no variant {variant_id}{'' if version is None else f'@{version}'} (variants: {known})")
    live = [i for i in hits if doc.signed.variants[i].lifecycle != "retired"]
    if version is None and len(live) > 1:
        raise CatalogRefused(f"{variant_id} has versions " + ", ".join(str(doc.signed.variants[i].version)
                                                                       for i in live) + ": pass --version")
    return (live or hits)[-1]


def load_figures(path) -> dict[str, float]:
    """The figures of an evidence file: a JSON object {name: number}."""
    path = Path(path)
    return _decode(_read(path, "evidence file"), dict[Id, Finite], path, "evidence file (a JSON object of numbers)")


def promote(path, variant_id: str, to: str, by: str, figures: dict | None = None, note: str = "",
            version: int | None = None, now: dt.datetime | None = None) -> Variant:
    """Move a variant one legal step along its lifecycle, with an evidence record. Refuses any other transition, and
    approving a version while another version of the id is approved."""
    path = Path(path)
    doc = read_catalog(path)
    i = _find(doc, variant_id, version)
    v = doc.signed.variants[i]
    if to not in NEXT[v.lifecycle]:
        allowed = " or ".join(NEXT[v.lifecycle]) or "nothing (retired is final)"
        raise CatalogRefused(f"{v.key}: {v.lifecycle} -> {to} is not a lifecycle transition (from {v.lifecycle}: "
                             f"{allowed})")
    if to == "approved":
        other = [w.key for w in doc.signed.variants if w.id == v.id and w.lifecycle == "approved"]
        if other:
            raise CatalogRefused(f"{v.key}: {other[0]} is approved; retire it first (one approved version per id)")
    try:
        evidence = msgspec.convert({"to": to, "by": by, "at": _iso(now or dt.datetime.now(dt.timezone.utc)),
                                    "figures": dict(figures or {}), "note": note}, Evidence)
    except msgspec.ValidationError as e:
        raise CatalogRefused(f"evidence for {v.key}: {e}") from None
    changed = msgspec.structs.replace(v, lifecycle=to, evidence=[*v.evidence, evidence])
    _write_catalog(path, _edited(doc, [*doc.signed.variants[:i], changed, *doc.signed.variants[i + 1:]]))
    return changed


def sign_catalog(path, key, expires: str | None = None, renew: bool = False,
                 now: dt.datetime | None = None) -> str:
    """Add (or replace) the signature of ``key`` (a private key file). ``expires`` (ISO 8601) sets the expiry of an
    unsigned catalog (default: 90 days from now); a signed catalog keeps its expiry unless ``renew``, which raises the
    version and drops the other signatures. Returns: the key id."""
    path = Path(path)
    doc = read_catalog(path)
    k = _load_key(Path(key), private=True)
    now = now or dt.datetime.now(dt.timezone.utc)
    body = doc.signed
    if renew:
        body = msgspec.structs.replace(body, version=body.version + 1)
        doc = CatalogFile(signatures=[], signed=body)
    if expires is not None:
        when = _iso(_utc(expires, "--expires"))
        if _utc(when, "--expires") <= now:
            raise CatalogRefused(f"--expires {expires}: already past")
        if doc.signatures and when != body.expires:
            raise CatalogRefused(f"{path}: {len(doc.signatures)} signature(s) cover expiry {body.expires}; another "
                                 "expiry would void them (pass --renew to start a new version)")
        body = msgspec.structs.replace(body, expires=when)
    elif not body.expires or (not doc.signatures and _utc(body.expires, "expires") <= now):
        body = msgspec.structs.replace(body, expires=_iso(now + DEFAULT_LIFETIME))
    signing = _nacl().signing.SigningKey(bytes.fromhex(k.seed))
    if bytes(signing.verify_key).hex() != k.public:
        raise CatalogRefused(f"{key}: its public half does not match its seed")
    kid = key_id(bytes(signing.verify_key))
    sig = signing.sign(canonical(body)).signature.hex()
    signatures = sorted([s for s in doc.signatures if s.keyid != kid] + [Signature(keyid=kid, sig=sig)],
                        key=lambda s: s.keyid)
    _write_catalog(path, CatalogFile(signatures=signatures, signed=body))
    return kid


# --- loading ---------------------------------------------------------------------------------------------------------

@attrs.frozen
class Catalog:
    """A verified catalog, seen from one scope. ``variants``/``ids``: the approved variants in scope, in catalog
    order (index i is a selector's arm i); ``all``: every variant listed."""
    path: Path
    name: str
    version: int
    digest: str
    expires: str
    signers: tuple[str, ...]
    scope: str | None
    variants: tuple[Variant, ...]
    all: tuple[Variant, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        """The ids of ``variants``: the names of a selector's arms."""
        return tuple(v.id for v in self.variants)

    def index(self, variant_id: str) -> int:
        """The dense index of an approved in-scope variant; CatalogRefused naming why another id is not one."""
        for i, v in enumerate(self.variants):
            if v.id == variant_id:
                return i
        listed = [v for v in self.all if v.id == variant_id]
        if not listed:
            raise CatalogRefused(f"{self.path}: no variant {variant_id!r} in catalog {self.name} v{self.version}")
        v = listed[-1]
        if v.lifecycle != "approved":
            raise CatalogRefused(f"{self.path}: variant {v.key} is {v.lifecycle}, not approved")
        raise CatalogRefused(f"{self.path}: variant {v.key} is outside scope {self.scope} (its scopes: "
                             f"{', '.join(v.scopes)})")

    def payload_path(self, variant: Variant) -> Path:
        """Where ``variant``'s payload is (verified when the catalog was loaded)."""
        return self.path.parent / variant.payload.path


def in_memory(name: str, ids, scope: str | None = None) -> Catalog:
    """A catalog that approves ``ids`` (version 1 each, placeholder payloads) and exists only in memory: never
    signed, never written. For simulations (discovery's staging canary) and for rebuilding an executor from an
    audit log's header (replay)."""
    built = tuple(msgspec.convert({"id": v, "version": 1, "lifecycle": "approved",
                                   "payload": {"path": f"{v}.json", "sha256": "0" * 64, "length": 0}}, Variant)
                  for v in ids)
    return Catalog(path=None, name=name, version=1, digest="0" * 64, expires="", signers=(), scope=scope,
                   variants=built, all=built)


def _trusted(trust) -> dict[str, bytes]:
    keys = {}
    for t in trust:
        public = bytes(t) if isinstance(t, (bytes, bytearray)) else public_key(t)
        if len(public) != 32:
            raise CatalogRefused(f"trusted key {t!r}: an ed25519 public key has 32 bytes, not {len(public)}")
        keys[key_id(public)] = public
    return keys


def _check_signatures(path: Path, doc: CatalogFile, signed: bytes, keys: dict[str, bytes], threshold: int):
    nacl = _nacl()
    good, untrusted, bad = [], [], []
    for s in doc.signatures:
        if s.keyid not in keys:
            untrusted.append(s.keyid)
            continue
        try:
            nacl.signing.VerifyKey(keys[s.keyid]).verify(signed, bytes.fromhex(s.sig))
        except nacl.exceptions.BadSignatureError:
            bad.append(s.keyid)
            continue
        if s.keyid not in good:
            good.append(s.keyid)
    if len(good) >= threshold:
        return tuple(good)
    why = [f"{len(good)} valid signature(s) by trusted keys, {threshold} required"]
    if bad:
        why.append(f"the signature by {', '.join(bad)} does not match the catalog's bytes (changed after signing)")
    if untrusted:
        why.append(f"signed by key(s) {', '.join(untrusted)} that are not trusted")
    if not doc.signatures:
        why.append("the catalog is not signed")
    raise CatalogRefused(f"{path}: " + "; ".join(why))


def _check_history(path: Path, body: Body, digest: str, accepted: _Accepted | None, min_version: int | None):
    """Rollback and lifecycle checks against what was accepted before."""
    floor = max(min_version or 0, accepted.version if accepted else 0)
    if body.version < floor:
        raise CatalogRefused(f"{path}: version {body.version} is older than version {floor} accepted before "
                             "(rollback refused)")
    if accepted is None:
        return
    if body.version == accepted.version and digest != accepted.digest:
        raise CatalogRefused(f"{path}: version {body.version} was accepted before with other contents (digest "
                             f"{accepted.digest[:16]}, now {digest[:16]})")
    now = {v.key: v.lifecycle for v in body.variants}
    for key, before in accepted.lifecycle.items():
        after = now.get(key)
        if after is None:
            if before == "approved":
                raise CatalogRefused(f"{path}: variant {key} was approved and is gone (retire it first)")
        elif after != before and after not in NEXT[before]:
            raise CatalogRefused(f"{path}: variant {key} went {before} -> {after}, not a lifecycle transition")
    # a dropped retired variant stays remembered as retired; a key seen retired can never come back


def _inside(relative: str) -> bool:
    """True for a relative path that stays below its directory: no leading '/', no '..', '.' or empty parts."""
    return not relative.startswith("/") and "\\" not in relative and \
        not any(part in ("", ".", "..") for part in relative.split("/"))


def _check_body(path: Path, body: Body, now: dt.datetime, hash_payloads: bool):
    if not body.expires:
        raise CatalogRefused(f"{path}: no expiry (sign it with `arqon catalog sign`)")
    expires = _utc(body.expires, f"{path}: expires")
    if expires <= now:
        raise CatalogRefused(f"{path}: expired at {body.expires}")
    seen, approved = set(), set()
    root = str(path.resolve().parent)
    for v in body.variants:
        if v.key in seen:
            raise CatalogRefused(f"{path}: variant {v.key} is listed twice")
        seen.add(v.key)
        if v.lifecycle == "approved":
            if v.id in approved:
                raise CatalogRefused(f"{path}: two versions of {v.id} are approved")
            approved.add(v.id)
        for name, (low, high) in v.envelope.knobs.items():
            if not low <= high:
                raise CatalogRefused(f"{path}: variant {v.key}: knob {name}'s range [{low}, {high}] is empty")
        if v.lifecycle != "retired" and not _inside(v.payload.path):
            raise CatalogRefused(f"{path}: variant {v.key}: payload {v.payload.path} is outside the catalog's "
                                 "directory")
    if not hash_payloads:
        return
    try:
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise CatalogRefused(f"{path}: cannot open the catalog's directory: {e.strerror}") from None
    try:
        for v in body.variants:
            problem = None if v.lifecycle == "retired" else _payload_problem(root_fd, v.payload)
            if problem:
                raise CatalogRefused(f"{path}: variant {v.key}: payload {v.payload.path} {problem}")
    finally:
        os.close(root_fd)


def _payload_problem(root: int, payload: Payload) -> str | None:
    """What is wrong with a payload file (its length or its sha256), or None. ``root``: the catalog directory's file
    descriptor. Reads up to 1 MiB at a time, asking for one byte past the signed length (which tells a longer file);
    a short read of a regular file is its end."""
    digest, length = hashlib.sha256(), 0
    try:
        fd = os.open(payload.path, os.O_RDONLY, dir_fd=root)
    except OSError as e:
        return f"cannot be read: {e.strerror}"
    try:
        while True:
            want = min(1 << 20, payload.length + 1 - length)
            chunk = os.read(fd, want)
            digest.update(chunk)
            length += len(chunk)
            if len(chunk) < want:
                break
            if length > payload.length:
                return f"has more than {payload.length} bytes, {payload.length} signed"
    except OSError as e:
        return f"cannot be read: {e.strerror}"
    finally:
        os.close(fd)
    if length != payload.length:
        return f"has {length} bytes, {payload.length} signed"
    if digest.hexdigest() != payload.sha256:
        return "has another sha256 than the signed one"
    return None


def _state_path(state, trust) -> Path | None:
    if state is False:
        return None
    if state is not None:
        return Path(state)
    first = next((t for t in trust if not isinstance(t, (bytes, bytearray))), None)
    if first is None:
        raise CatalogRefused("state: with trusted keys given as bytes, pass state=PATH (or state=False and "
                             "min_version)")
    return Path(first).resolve().parent / STATE_FILE


def load_catalog(path, trust: Sequence, threshold: int = 1, scope: str | None = None, state=None,
                 min_version: int | None = None, require: Sequence[str] = (), hash_payloads: bool = True,
                 now: dt.datetime | None = None) -> Catalog:
    """Verify and load a catalog. ``trust``: public key files (or 32-byte keys); ``threshold``: distinct trusted
    signatures required; ``scope``: keep only the variants approved for it (None: every approved variant);
    ``state``: the rollback state file (None: ``catalog-state.json`` beside the first trust key; False: none, and
    ``min_version`` is the floor); ``require``: ids that must be approved and in scope. On acceptance the state file
    records this version. Raises: CatalogRefused naming the reason."""
    path = Path(path)
    keys = _trusted(trust)
    if not keys:
        raise CatalogRefused("no trusted key given (pass at least one public key)")
    if not 1 <= threshold <= len(keys):
        raise CatalogRefused(f"threshold {threshold}: must be between 1 and the {len(keys)} distinct trusted key(s)")
    doc = read_catalog(path)
    signed = canonical(doc.signed)
    signers = _check_signatures(path, doc, signed, keys, threshold)
    digest = hashlib.sha256(signed).hexdigest()
    body = doc.signed
    _check_body(path, body, now or dt.datetime.now(dt.timezone.utc), hash_payloads)
    where = _state_path(state, trust)
    record = _decode(where.read_bytes(), _State, where, "catalog state file") if where and where.exists() else _State()
    accepted = record.catalogs.get(body.name)
    _check_history(path, body, digest, accepted, min_version)
    live = tuple(v for v in body.variants if v.lifecycle == "approved" and (scope is None or scope in v.scopes))
    catalog = Catalog(path=path, name=body.name, version=body.version, digest=digest, expires=body.expires,
                      signers=signers, scope=scope, variants=live, all=tuple(body.variants))
    for variant_id in require:
        catalog.index(variant_id)
    if where is not None:
        lifecycle = dict(accepted.lifecycle) if accepted else {}
        lifecycle.update({v.key: v.lifecycle for v in body.variants})
        for key, before in list(lifecycle.items()):
            if before == "candidate" and key not in {v.key for v in body.variants}:
                del lifecycle[key]  # a dropped candidate may come back
        now_accepted = _Accepted(version=body.version, digest=digest, lifecycle=dict(sorted(lifecycle.items())))
        if now_accepted != accepted:  # a catalog verified again writes nothing
            _write_atomically(where, canonical(_State(catalogs={**record.catalogs, body.name: now_accepted})) + b"\n")
    return catalog
