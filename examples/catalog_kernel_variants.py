"""Kernel variants from a signed catalog, chosen online by their measured time through the safety executor.

The scenario itself is ``arqon/demo/kernels.py`` (also ``arqon demo --scenario kernels``): nine blocked matrix-multiply
builds are added to a catalog as candidates, a correctness gate against NumPy refuses the one that drops the last
partial tile, the rest are promoted with their timings as evidence and signed; online, one Gaussian Thompson selector
per input size picks the live build through the executor by its measured time. This script runs it and prints the
totals against the best and the worst single build.

Run: ``python examples/catalog_kernel_variants.py`` (about 10 s once compiled; needs PyNaCl:
``pip install 'arqon[catalog]'``).
"""

import argparse

from arqon.demo import kernels


def main(decisions=600, seed=0, quiet=False):
    out = kernels.run(decisions, seed)
    if not quiet:
        fixed, median, ids = out["fixed"], out["median"], out["ids"]
        best, worst = min(fixed, key=fixed.get), max(fixed, key=fixed.get)
        print(f"catalog {out['catalog'].name} v{out['catalog'].version}: {len(ids)} approved variants of "
              f"{len(kernels.CANDIDATES)} candidates (refused: {', '.join(out['refused'])})")
        for bucket in kernels.SIZES:
            chosen = [v for bk, v in out["live"] if bk == bucket]
            top = max(set(chosen), key=chosen.count)
            fastest = min(ids, key=lambda name: median[name, bucket])
            print(f"  {bucket}: most live {top} ({chosen.count(top)} of {len(chosen)} decisions, median "
                  f"{median[top, bucket]:.0f} us); fastest median {fastest} ({median[fastest, bucket]:.0f} us)")
        print(f"kernel time over {decisions} decisions: {out['total'] / 1e3:.1f} ms online, {fixed[best] / 1e3:.1f} "
              f"ms with the best single variant ({best}), {fixed[worst] / 1e3:.1f} ms with the worst ({worst}); "
              f"{out['executor'].counters()['applied']} swaps")
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--decisions", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(args.decisions, args.seed)
