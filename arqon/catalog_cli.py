"""``arqon catalog``: keygen, init, add, promote, sign, verify, show. Exit 0 on success, 2 with one line on a refusal."""

from __future__ import annotations

import getpass
import sys

import msgspec

DESCRIPTION = """\
Keep an approved variant catalog: a signed, versioned JSON file listing pre-built variants and their payloads.
A typical release: keygen once per signer; init; add each variant (a candidate); promote the ones with evidence to
approved; sign (each of the k signers); verify on the machine that loads it. Every edit after a signing raises the
version and drops the signatures, which covered the old bytes."""


def add_parser(commands) -> None:
    c = commands.add_parser("catalog", help="create, edit, sign, verify and show an approved variant catalog",
                            description=DESCRIPTION,
                            epilog="Exit codes: 0 success, 2 a refusal (one line on stderr naming the reason).")
    verbs = c.add_subparsers(dest="verb", metavar="VERB", required=True)
    k = verbs.add_parser("keygen", help="write a new ed25519 key pair: KEY (private, mode 0600) and KEY.pub")
    k.add_argument("key", metavar="KEY", help="the private key file to write (never overwritten)")
    i = verbs.add_parser("init", help="write an empty unsigned catalog at version 1")
    i.add_argument("catalog", metavar="CAT")
    i.add_argument("--name", help="the catalog's name (default: the file name without its suffix)")
    a = verbs.add_parser("add", help="add a variant as a candidate, hashing its payload",
                         description="Add a candidate variant. Its payload must be a file inside the catalog's "
                                     "directory; its path, sha256 and length are recorded.")
    a.add_argument("catalog", metavar="CAT")
    a.add_argument("--id", required=True, help="the variant's id (letters, digits, '_', '.', '-')")
    a.add_argument("--version", required=True, type=int, help="the variant's version (an integer >= 1, above the "
                                                             "id's earlier versions)")
    a.add_argument("--payload", required=True, metavar="FILE", help="the variant's artifact")
    a.add_argument("--meta", metavar="FILE", help="JSON/TOML/YAML with kind, scopes, envelope (hardware, "
                                                  "memory_cap, knobs), latency (ns by context bucket), quality")
    p = verbs.add_parser("promote", help="move a variant along its lifecycle: candidate -> approved -> retired")
    p.add_argument("catalog", metavar="CAT")
    p.add_argument("id", metavar="ID")
    p.add_argument("--to", required=True, choices=("approved", "retired"))
    p.add_argument("--version", type=int, help="which version of ID (needed when it has several live ones)")
    p.add_argument("--by", default=None, help="who or what promotes it (default: the user name)")
    p.add_argument("--evidence", metavar="FILE", help="a JSON object of figures {name: number} behind the decision")
    p.add_argument("--note", default="", help="a line of explanation kept in the evidence record")
    s = verbs.add_parser("sign", help="add this key's signature (k-of-n: each signer runs sign in turn)")
    s.add_argument("catalog", metavar="CAT")
    s.add_argument("--key", required=True, metavar="KEY", help="a private key file from `arqon catalog keygen`")
    s.add_argument("--expires", metavar="ISO-8601", help="expiry of an unsigned catalog (default: 90 days); a "
                                                         "signed one keeps its expiry")
    s.add_argument("--renew", action="store_true", help="start a new version (dropping the other signatures), e.g. "
                                                        "to set a new expiry")
    v = verbs.add_parser("verify", help="check signatures, expiry, rollback, lifecycle and every payload",
                         description="Verify a catalog as the runtime loader does. On success the rollback state file "
                                     "records its version: a later verify refuses an older version.")
    v.add_argument("catalog", metavar="CAT")
    v.add_argument("--trust", required=True, action="append", metavar="PUB", help="a trusted public key (repeat)")
    v.add_argument("--threshold", type=int, default=1, help="distinct trusted signatures required (default 1)")
    v.add_argument("--scope", help="list only the variants approved for this scope (e.g. prod)")
    v.add_argument("--require", action="append", default=[], metavar="ID",
                   help="refuse unless ID is approved and in scope (repeat)")
    v.add_argument("--state", metavar="FILE", help="the rollback state file (default: catalog-state.json beside the "
                                                   "first --trust key)")
    v.add_argument("--no-state", action="store_true", help="keep no rollback state (only for inspection)")
    w = verbs.add_parser("show", help="print the catalog (unverified) as a table, or as JSON")
    w.add_argument("catalog", metavar="CAT")
    w.add_argument("--json", action="store_true", help="print the signed part as JSON")


def run(args) -> int:
    from pathlib import Path

    from arqon import catalog as cat

    if args.verb == "keygen":
        print(f"{args.key}: key {cat.generate_key(args.key)} (public half in {args.key}.pub)")
    elif args.verb == "init":
        name = args.name or Path(args.catalog).stem
        cat.init_catalog(args.catalog, name)
        print(f"{args.catalog}: catalog {name} v1, empty, unsigned")
    elif args.verb == "add":
        v = cat.add_variant(args.catalog, args.id, args.version, args.payload, args.meta)
        print(f"{args.catalog}: added {v.key} ({v.kind}, {v.payload.length} bytes, candidate)")
    elif args.verb == "promote":
        figures = cat.load_figures(args.evidence) if args.evidence else {}
        v = cat.promote(args.catalog, args.id, args.to, args.by or getpass.getuser(), figures, args.note,
                        args.version)
        print(f"{args.catalog}: {v.key} is {v.lifecycle}")
    elif args.verb == "sign":
        kid = cat.sign_catalog(args.catalog, args.key, args.expires, args.renew)
        doc = cat.read_catalog(args.catalog)
        print(f"{args.catalog}: v{doc.signed.version} signed by {kid} ({len(doc.signatures)} signature(s)), "
              f"expires {doc.signed.expires}")
    elif args.verb == "verify":
        c = cat.load_catalog(args.catalog, args.trust, args.threshold, args.scope,
                             False if args.no_state else args.state, require=args.require)
        where = f" in scope {c.scope}" if c.scope else ""
        print(f"{args.catalog}: catalog {c.name} v{c.version} verified (signed by {', '.join(c.signers)}; "
              f"expires {c.expires}); {len(c.variants)} approved variant(s){where}: {', '.join(c.ids) or 'none'}")
    else:
        _show(cat.read_catalog(args.catalog), args.json)
    return 0


def _show(doc, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(doc), indent=2).decode() + "\n")
        return
    b = doc.signed
    signers = ", ".join(s.keyid for s in doc.signatures) or "none"
    print(f"catalog {b.name} v{b.version}, expires {b.expires or 'not set'}, signatures: {signers} (not verified: "
          "use verify)")
    rows = [("id", "version", "kind", "lifecycle", "scopes", "bytes", "sha256")]
    rows += [(v.id, str(v.version), v.kind, v.lifecycle, ",".join(v.scopes), str(v.payload.length),
              v.payload.sha256[:12]) for v in b.variants]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip())
