#!/usr/bin/env bash
# Dependency policy without installing anything (the checks of `cargo deny check licenses bans
# sources`, from `cargo metadata`): every package in the workspace's resolved graph (all targets,
# all platforms, dev and build dependencies included)
#   * has an SPDX licence expression that the allowlist satisfies (OR: one side, AND: both,
#     WITH: the licence and the exception; legacy "A/B" is read as "A OR B"),
#   * comes from crates.io or is a path (workspace) crate: no git or other registries,
#   * is not banned: rsa (RUSTSEC-2023-0071, Marvin, has no fix) and serde_yaml (deprecated).
# Usage: scripts/deps-check.sh   Exit 0: clean; 1: policy violation; 2: could not run.
# See docs/dependencies.md.
set -euo pipefail
cd "$(dirname "$0")/.."

meta=$(mktemp)
trap 'rm -f "$meta"' EXIT
if ! cargo metadata --format-version 1 --locked >"$meta"; then
  echo "deps-check: cargo metadata failed" >&2
  exit 2
fi

python3 - "$meta" <<'PY'
import json, re, sys
from collections import Counter

ALLOWED = {"Apache-2.0", "MIT", "ISC", "BSD-3-Clause", "MIT-0", "CC0-1.0", "Unicode-3.0",
           "BSL-1.0", "Unlicense", "Zlib"}
ALLOWED_EXCEPTIONS = {"LLVM-exception"}
BANNED = {
    "rsa": "RUSTSEC-2023-0071 (Marvin timing attack) has no fixed version",
    "serde_yaml": "deprecated and archived by its author (0.9.34+deprecated); kpki uses serde-saphyr",
}
CRATES_IO = {"registry+https://github.com/rust-lang/crates.io-index",
             "sparse+https://index.crates.io/"}

class Bad(Exception):
    pass

def satisfied(expr):
    """Evaluates an SPDX expression against the allowlist (precedence: WITH > AND > OR)."""
    toks = re.findall(r"\(|\)|[^\s()]+", expr.replace("/", " OR "))
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take():
        nonlocal pos
        if pos >= len(toks):
            raise Bad(f"unexpected end of {expr!r}")
        pos += 1
        return toks[pos - 1]

    def primary():
        t = take()
        if t == "(":
            v = or_expr()
            if take() != ")":
                raise Bad(f"unbalanced parentheses in {expr!r}")
        elif t in ("AND", "OR", "WITH", ")"):
            raise Bad(f"unexpected {t!r} in {expr!r}")
        else:
            v = t.rstrip("+") in ALLOWED
        if peek() == "WITH":
            take()
            v = v and take() in ALLOWED_EXCEPTIONS
        return v

    def and_expr():
        v = primary()
        while peek() == "AND":
            take()
            v = primary() and v
        return v

    def or_expr():
        v = and_expr()
        while peek() == "OR":
            take()
            v = and_expr() or v
        return v

    v = or_expr()
    if pos != len(toks):
        raise Bad(f"trailing {toks[pos]!r} in {expr!r}")
    return v

# The evaluator must be able to say no.
for e, want in [("MIT", True), ("GPL-3.0-only", False), ("MIT OR GPL-3.0-only", True),
                ("MIT AND GPL-3.0-only", False), ("(MIT OR Apache-2.0) AND Unicode-3.0", True),
                ("Apache-2.0 WITH LLVM-exception", True), ("Apache-2.0 WITH Foo-exception", False),
                ("MIT/Apache-2.0", True), ("LGPL-2.1/GPL-2.0", False)]:
    if satisfied(e) != want:
        print(f"deps-check: self-test failed on {e!r}", file=sys.stderr)
        sys.exit(2)

meta = json.load(open(sys.argv[1]))
errors, seen = [], Counter()
for p in sorted(meta["packages"], key=lambda p: (p["name"], p["version"])):
    who = f'{p["name"]} {p["version"]}'
    lic = p.get("license")
    if not lic:
        errors.append(f"{who}: no SPDX licence expression (license-file: {p.get('license_file')})")
    else:
        try:
            if satisfied(lic):
                seen[lic] += 1
            else:
                errors.append(f"{who}: licence {lic!r} is not satisfied by the allowlist")
        except Bad as e:
            errors.append(f"{who}: cannot read the licence expression: {e}")
    src = p.get("source")
    if src is not None and src not in CRATES_IO:
        errors.append(f"{who}: source {src} is neither crates.io nor a path")
    if p["name"] in BANNED:
        errors.append(f"{who}: banned: {BANNED[p['name']]}")

print(f"deps-check: {len(meta['packages'])} packages")
for lic, n in seen.most_common():
    print(f"  {n:4} {lic}")
if errors:
    print(f"deps-check: {len(errors)} violation(s):")
    for e in errors:
        print("  " + e)
    sys.exit(1)
print("deps-check: licences, sources and bans OK")
PY
