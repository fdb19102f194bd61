"""What loading a signed catalog costs: a 256-variant catalog (4 KiB payloads, two signatures, both required) verified
from its file, as a deployment does at start and on each catalog change. Never on the hot path.

Run: ``make bench``. ``test_verify_256`` is the whole loader (canonical form, two ed25519 checks, expiry, rollback state,
lifecycle history, every payload's length and sha256); ``test_verify_256_without_payloads`` leaves the payloads out, to
show where the time goes. The state file is written only when a catalog is first accepted (one fsync), not here.
"""

import pytest

from arqon import catalog as cat

N, PAYLOAD = 256, 4096


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    d = tmp_path_factory.mktemp("catalog")
    for k in ("k1", "k2"):
        cat.generate_key(d / k)
    path = d / "cat.json"
    cat.init_catalog(path, "bench")
    doc = cat.read_catalog(path)
    variants = []
    for i in range(N):
        (d / f"v{i}.bin").write_bytes(bytes([i % 256]) * PAYLOAD)
        variants.append(cat.Variant(id=f"v{i}", version=1, payload=cat._payload(path, d / f"v{i}.bin"),
                                    kind="kernel", lifecycle="approved", scopes=["prod"],
                                    latency={"small": 1000.0 + i, "large": 9000.0 + i}))
    cat._write_catalog(path, cat.CatalogFile(signed=cat.Body(name="bench", version=doc.signed.version,
                                                             variants=variants)))
    cat.sign_catalog(path, d / "k1")
    cat.sign_catalog(path, d / "k2")
    trust = [d / "k1.pub", d / "k2.pub"]
    cat.load_catalog(path, trust, threshold=2)  # first acceptance: writes the state file
    return path, trust


def test_verify_256(benchmark, release):
    path, trust = release
    c = benchmark(cat.load_catalog, path, trust, threshold=2, scope="prod")
    assert len(c.variants) == N


def test_verify_256_without_payloads(benchmark, release):
    path, trust = release
    c = benchmark(cat.load_catalog, path, trust, threshold=2, scope="prod", hash_payloads=False)
    assert len(c.variants) == N
