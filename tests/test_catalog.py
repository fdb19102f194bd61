"""The approved variant catalog: editing, signing, and the loader's refusals (the tamper matrix), through the Python
loader and the CLI."""

import datetime as dt
import hashlib
import os
import stat
import subprocess
import sys

import msgspec
import pytest

from arqon import catalog as cat
from arqon.cli import main

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
EXPIRES = NOW + dt.timedelta(days=60)  # the release's expiry: the CLI verifies at the current time


def _sign(path, *keys, **kw):
    for k in keys:
        cat.sign_catalog(path, k, now=NOW, **kw)


def _rewrite(path, change):
    """Write ``change(body)`` as the catalog's new body, unsigned (a release someone signs afterwards)."""
    doc = cat.read_catalog(path)
    cat._write_catalog(path, cat.CatalogFile(signed=change(doc.signed)))


def _variant(body, key, **fields):
    return msgspec.structs.replace(body, variants=[msgspec.structs.replace(v, **fields) if v.key == key else v
                                                   for v in body.variants])


@pytest.fixture
def release(tmp_path):
    """A catalog signed by k1 and k2 (trusted: k1, k2, k3 unused): int8 approved for staging and prod, fp16 approved
    for staging only, exit3 a candidate."""
    for k in ("k1", "k2", "k3", "rogue"):
        cat.generate_key(tmp_path / k)
    path = tmp_path / "cat.json"
    cat.init_catalog(path, "inference")
    for name, scopes in (("int8", ["staging", "prod"]), ("fp16", ["staging"]), ("exit3", ["prod"])):
        (tmp_path / f"{name}.bin").write_bytes(name.encode() * 100)
        cat.add_variant(path, name, 1, tmp_path / f"{name}.bin",
                        {"kind": "quantization", "scopes": scopes, "latency": {"small": 1200.0, "large": 5100.0},
                         "envelope": {"hardware": ["avx2"], "memory_cap": 1 << 30, "knobs": {"batch": [1, 64]}}})
    for name in ("int8", "fp16"):
        cat.promote(path, name, "approved", by="gate", figures={"p99_ns": 4100.0}, now=NOW)
    cat.sign_catalog(path, tmp_path / "k1", expires=cat._iso(EXPIRES), now=NOW)
    cat.sign_catalog(path, tmp_path / "k2", now=NOW)
    return tmp_path, path


def _load(d, path, **kw):
    kw.setdefault("trust", [d / "k1.pub", d / "k2.pub", d / "k3.pub"])
    kw.setdefault("now", NOW)
    return cat.load_catalog(path, **kw)


def test_a_clean_catalog_verifies_and_maps_approved_in_scope_variants_to_dense_indices(release):
    d, path = release
    c = _load(d, path, threshold=2, scope="prod")
    assert (c.name, c.version, c.ids) == ("inference", 1, ("int8",))
    assert sorted(c.signers) == sorted(cat.key_id(cat.public_key(d / f"{k}.pub")) for k in ("k1", "k2"))
    assert c.digest == hashlib.sha256(cat.canonical(cat.read_catalog(path).signed)).hexdigest()
    assert _load(d, path, scope="staging").ids == ("int8", "fp16")
    assert _load(d, path).index("fp16") == 1
    assert [e.figures for e in c.variants[0].evidence] == [{"p99_ns": 4100.0}]
    assert c.payload_path(c.variants[0]).read_bytes() == b"int8" * 100


def _tampered(d, path):
    """(name, how to tamper, loader keyword arguments, a phrase the refusal must contain)."""
    k1, k2 = (d / "k1", d / "k2") if d else (None, None)

    def payload_changed():
        (d / "int8.bin").write_bytes(b"INT8" * 100)

    def payload_truncated():
        (d / "int8.bin").write_bytes(b"int8" * 99)

    def payload_longer():
        (d / "int8.bin").write_bytes(b"int8" * 100 + b"!")

    def payload_gone():
        (d / "fp16.bin").unlink()

    def rogue_signs():
        _rewrite(path, lambda b: b)
        _sign(path, d / "rogue")

    def one_signature():
        _rewrite(path, lambda b: b)
        _sign(path, k1)

    def same_key_twice():
        doc = cat.read_catalog(path)
        cat._write_catalog(path, cat.CatalogFile(signed=doc.signed, signatures=[doc.signatures[0]] * 2))

    def unsigned():
        _rewrite(path, lambda b: b)

    def forged_body():  # a changed field under the old signatures, re-encoded canonically
        doc = cat.read_catalog(path)
        body = _variant(doc.signed, "exit3@1", lifecycle="approved")
        cat._write_catalog(path, cat.CatalogFile(signed=body, signatures=doc.signatures))

    def reformatted():
        path.write_bytes(msgspec.json.format(path.read_bytes(), indent=1))

    def rolled_back():
        old = path.read_bytes()
        cat.promote(path, "exit3", "approved", by="gate", now=NOW)
        _sign(path, k1, k2)
        _load(d, path, threshold=2)  # version 2 accepted
        path.write_bytes(old)

    def forked():
        _load(d, path, threshold=2)  # version 1 accepted
        _rewrite(path, lambda b: _variant(b, "exit3@1", quality=0.5))
        _sign(path, k1, k2)

    def reapproved_after_retiring():
        cat.promote(path, "int8", "retired", by="ops", now=NOW)
        _sign(path, k1, k2)
        _load(d, path, threshold=2)  # version 2 accepted, int8 retired
        _rewrite(path, lambda b: msgspec.structs.replace(_variant(b, "int8@1", lifecycle="approved"), version=3))
        _sign(path, k1, k2)

    def approved_dropped():
        _load(d, path, threshold=2)
        _rewrite(path, lambda b: msgspec.structs.replace(
            b, version=2, variants=[v for v in b.variants if v.id != "fp16"]))
        _sign(path, k1, k2)

    def escaping_payload():
        outside = d.parent / f"{d.name}-outside.bin"
        outside.write_bytes(b"x")
        bad = cat.Payload(path=f"../{outside.name}", sha256=hashlib.sha256(b"x").hexdigest(), length=1)
        _rewrite(path, lambda b: _variant(b, "exit3@1", payload=bad))
        _sign(path, k1, k2)

    def two_approved_versions():
        _rewrite(path, lambda b: msgspec.structs.replace(
            b, variants=[*b.variants, msgspec.structs.replace(b.variants[0], version=2)]))
        _sign(path, k1, k2)

    def not_json():
        path.write_bytes(b"{\"signed\": ")

    return [
        ("payload hash differs", payload_changed, {}, "another sha256 than the signed one"),
        ("payload truncated", payload_truncated, {}, "396 bytes, 400 signed"),
        ("payload longer", payload_longer, {}, "has more than 400 bytes, 400 signed"),
        ("payload missing", payload_gone, {}, "cannot be read: No such file"),
        ("untrusted key", rogue_signs, {}, "not trusted"),
        ("too few signatures", one_signature, {"threshold": 2}, "1 valid signature(s) by trusted keys, 2 required"),
        ("one key's signature twice", same_key_twice, {"threshold": 2}, "2 required"),
        ("unsigned", unsigned, {}, "not signed"),
        ("changed field under old signatures", forged_body, {}, "does not match the catalog's bytes"),
        ("not canonical", reformatted, {}, "not in canonical form"),
        ("expired", lambda: None, {"now": EXPIRES + dt.timedelta(seconds=1)}, "expired at"),
        ("rolled back", rolled_back, {"threshold": 2}, "older than version 2"),
        ("same version, other contents", forked, {"threshold": 2}, "accepted before with other contents"),
        ("outside the caller's scope", lambda: None, {"scope": "prod", "require": ["fp16"]}, "outside scope prod"),
        ("candidate required", lambda: None, {"require": ["exit3"]}, "is candidate, not approved"),
        ("retired -> approved", reapproved_after_retiring, {"threshold": 2}, "retired -> approved"),
        ("approved dropped without retiring", approved_dropped, {"threshold": 2}, "was approved and is gone"),
        ("payload outside the catalog", escaping_payload, {}, "outside the catalog's directory"),
        ("two approved versions of an id", two_approved_versions, {}, "two versions of int8 are approved"),
        ("not JSON", not_json, {}, "not a valid catalog"),
        ("rollback floor from the caller", lambda: None, {"state": False, "min_version": 2}, "older than version 2"),
    ]


CASES = [name for name, *_ in _tampered(None, None)]
CLI_CASES = [name for name, _, kw, _ in _tampered(None, None) if "now" not in kw and "min_version" not in kw]


@pytest.mark.parametrize("case", CASES)
def test_the_loader_refuses_each_tampering_with_one_line_naming_the_reason(release, case):
    d, path = release
    _, tamper, kw, phrase = next(c for c in _tampered(d, path) if c[0] == case)
    tamper()
    with pytest.raises(cat.CatalogRefused) as e:
        _load(d, path, **kw)
    assert phrase in str(e.value) and "\n" not in str(e.value)


def test_every_single_byte_change_is_refused(release):
    """Each byte of the file replaced in turn (by the next byte value): the loader, needing both signatures, refuses
    every version."""
    d, path = release
    raw = path.read_bytes()
    accepted = 0
    for i in range(len(raw)):
        path.write_bytes(raw[:i] + bytes([(raw[i] + 1) % 256]) + raw[i + 1:])
        try:
            _load(d, path, threshold=2, state=False)
            accepted += 1
        except cat.CatalogRefused:
            pass
    assert accepted == 0
    path.write_bytes(raw)
    _load(d, path, threshold=2)


def _cli(*argv, capsys):
    rc = main(["catalog", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("case", CLI_CASES)  # the CLI verifies at the current time, its floor in the state file
def test_the_cli_refuses_each_tampering_with_exit_2_and_one_line(release, case, capsys):
    d, path = release
    _, tamper, kw, phrase = next(c for c in _tampered(d, path) if c[0] == case)
    tamper()
    argv = ["verify", path, *sum((["--trust", d / f"{k}.pub"] for k in ("k1", "k2", "k3")), [])]
    argv += ["--threshold", kw.get("threshold", 1)] + (["--scope", kw["scope"]] if "scope" in kw else [])
    argv += sum((["--require", r] for r in kw.get("require", [])), [])
    rc, out, err = _cli(*argv, capsys=capsys)
    assert rc == 2 and out == "" and phrase in err and err.count("\n") == 1, err


def test_the_cli_makes_a_release_that_verifies(tmp_path, capsys):
    key = tmp_path / "release"
    assert _cli("keygen", key, capsys=capsys)[0] == 0
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600 and (tmp_path / "release.pub").exists()
    assert _cli("keygen", key, capsys=capsys)[:1] == (2,)  # never overwritten
    c = tmp_path / "variants.json"
    (tmp_path / "tile32.so").write_bytes(b"\x7fELF" + bytes(60))
    (tmp_path / "meta.toml").write_text('kind = "kernel"\nscopes = ["prod"]\n[latency]\nn1024 = 880.0\n')
    assert _cli("init", c, capsys=capsys)[0] == 0
    rc, out, _ = _cli("add", c, "--id", "tile32", "--version", 1, "--payload", tmp_path / "tile32.so",
                      "--meta", tmp_path / "meta.toml", capsys=capsys)
    assert rc == 0 and "tile32@1 (kernel, 64 bytes, candidate)" in out
    (tmp_path / "figures.json").write_text('{"p50_ns": 880, "speedup": 1.7}')
    assert _cli("promote", c, "tile32", "--to", "approved", "--by", "gate", "--evidence",
                tmp_path / "figures.json", capsys=capsys)[0] == 0
    assert _cli("sign", c, "--key", key, "--expires", "2099-01-01T00:00:00Z", capsys=capsys)[0] == 0
    rc, out, _ = _cli("verify", c, "--trust", f"{key}.pub", "--scope", "prod", capsys=capsys)
    assert rc == 0 and "catalog variants v1 verified" in out and "in scope prod: tile32" in out
    rc, out, _ = _cli("show", c, capsys=capsys)
    assert rc == 0 and "tile32  1        kernel  approved" in out
    rc, out, _ = _cli("show", c, "--json", capsys=capsys)
    doc = msgspec.json.decode(out)
    assert doc["signed"]["variants"][0]["evidence"][0]["figures"] == {"p50_ns": 880.0, "speedup": 1.7}
    # the first edit after signing starts version 2, unsigned; the old verify state refuses version 1 from now on
    assert _cli("promote", c, "tile32", "--to", "retired", capsys=capsys)[0] == 0
    doc = cat.read_catalog(c)
    assert (doc.signed.version, doc.signatures) == (2, [])
    assert _cli("sign", c, "--key", key, capsys=capsys)[0] == 0
    assert cat.read_catalog(c).signed.expires == "2099-01-01T00:00:00Z"  # kept
    rc, out, _ = _cli("verify", c, "--trust", f"{key}.pub", capsys=capsys)
    assert rc == 0 and "0 approved variant(s)" in out


@pytest.mark.parametrize("argv, phrase", [
    (["promote", "{c}", "a", "--to", "retired"], "candidate -> retired is not a lifecycle transition"),
    (["promote", "{c}", "nope", "--to", "approved"], "no variant nope (variants: a@1)"),
    (["add", "{c}", "--id", "a", "--version", "1", "--payload", "{d}/a.bin"], "a already has version 1"),
    (["add", "{c}", "--id", "b", "--version", "1", "--payload", "/etc/hostname"], "inside the catalog's directory"),
    (["add", "{c}", "--id", "b c", "--version", "1", "--payload", "{d}/a.bin"], "--id 'b c'"),
    (["add", "{c}", "--id", "b", "--version", "0", "--payload", "{d}/a.bin"], "version"),
    (["add", "{c}", "--id", "b", "--version", "1", "--payload", "{d}/a.bin", "--meta", "{d}/bad.json"], "kind"),
    (["sign", "{c}", "--key", "{d}/k.pub"], "a public key; signing needs the private key file"),
    (["sign", "{c}", "--key", "{d}/k", "--expires", "2020-01-01T00:00:00Z"], "already past"),
    (["sign", "{c}", "--key", "{d}/k", "--expires", "tomorrow"], "not an ISO 8601 time"),
    (["sign", "{c}", "--key", "{d}/k", "--expires", "2099-01-01T00:00:00"], "no time zone"),
    (["verify", "{c}", "--trust", "{d}/k.pub", "--threshold", "2"], "threshold 2"),
    (["verify", "{c}", "--trust", "{d}/missing.pub"], "no such key file"),
    (["show", "{d}/missing.json"], "no such catalog"),
    (["init", "{c}"], "already exists"),
])
def test_bad_edits_and_arguments_get_exit_2_and_one_line(tmp_path, capsys, argv, phrase):
    c = tmp_path / "c.json"
    cat.generate_key(tmp_path / "k")
    cat.init_catalog(c, "c")
    (tmp_path / "a.bin").write_bytes(b"a")
    (tmp_path / "bad.json").write_text('{"kind": "gpu-magic"}')
    cat.add_variant(c, "a", 1, tmp_path / "a.bin")
    before = c.read_bytes()
    rc, out, err = _cli(*[a.format(c=c, d=tmp_path) for a in argv], capsys=capsys)
    assert rc == 2 and phrase in err and err.count("\n") == 1, err
    assert c.read_bytes() == before  # a refused edit changes nothing


def test_signers_must_agree_on_the_expiry_and_renew_starts_a_new_version(release):
    d, path = release
    with pytest.raises(cat.CatalogRefused, match="would void them"):
        cat.sign_catalog(path, d / "k3", expires="2027-06-01T00:00:00Z", now=NOW)
    cat.sign_catalog(path, d / "k3", expires="2027-06-01T00:00:00Z", renew=True, now=NOW)
    doc = cat.read_catalog(path)
    assert (doc.signed.version, len(doc.signatures), doc.signed.expires) == (2, 1, "2027-06-01T00:00:00Z")


def test_approving_a_new_version_needs_the_old_one_retired(release):
    d, path = release
    (d / "int8-2.bin").write_bytes(b"v2")
    cat.add_variant(path, "int8", 2, d / "int8-2.bin")
    with pytest.raises(cat.CatalogRefused, match="int8@1 is approved; retire it first"):
        cat.promote(path, "int8", "approved", by="gate", version=2)
    with pytest.raises(cat.CatalogRefused, match="pass --version"):
        cat.promote(path, "int8", "retired", by="ops")
    cat.promote(path, "int8", "retired", by="ops", version=1)
    cat.promote(path, "int8", "approved", by="gate")  # the only live version now
    _sign(path, d / "k1", d / "k2")
    assert [v.key for v in _load(d, path, threshold=2).variants] == ["fp16@1", "int8@2"]


def test_a_dropped_candidate_may_come_back_but_a_retired_variant_never_does(release):
    d, path = release
    _load(d, path, threshold=2)
    _rewrite(path, lambda b: msgspec.structs.replace(b, version=2, variants=[v for v in b.variants
                                                                             if v.id != "exit3"]))
    _sign(path, d / "k1", d / "k2")
    _load(d, path, threshold=2)
    (d / "exit3.bin").write_bytes(b"exit3" * 10)
    cat.add_variant(path, "exit3", 1, d / "exit3.bin")
    cat.promote(path, "fp16", "retired", by="ops")
    _sign(path, d / "k1", d / "k2")
    assert _load(d, path, threshold=2).version == 3
    _rewrite(path, lambda b: msgspec.structs.replace(b, version=4, variants=[v for v in b.variants
                                                                             if v.id != "fp16"]))
    _sign(path, d / "k1", d / "k2")
    _load(d, path, threshold=2)  # dropping a retired variant is fine
    (d / "fp16.bin").write_bytes(b"fp16" * 100)
    cat.add_variant(path, "fp16", 1, d / "fp16.bin")
    _sign(path, d / "k1", d / "k2")
    with pytest.raises(cat.CatalogRefused, match="fp16@1 went retired -> candidate"):
        _load(d, path, threshold=2)


def test_the_installed_command_refuses_in_one_line(release):
    d, path = release
    (d / "int8.bin").write_bytes(b"tampered")
    out = subprocess.run([sys.executable, "-m", "arqon", "catalog", "verify", str(path), "--trust", str(d / "k1.pub")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and out.stdout == "" and out.stderr.count("\n") == 1
    assert "int8@1: payload int8.bin has 8 bytes, 400 signed" in out.stderr
