#!/usr/bin/env bash
# RustSec audit of Cargo.lock (and fuzz/Cargo.lock, scripts/openssl-prebuild/Cargo.lock) against
# the offline advisory-database snapshot.
# Usage: scripts/audit.sh [--python] [ADVISORY_DB_DIR]
#   ADVISORY_DB_DIR: default $ADVISORY_DB, else ../shared/advisory-db (relative to the repo root).
#   default:  cargo audit --no-fetch --deny warnings (installs cargo-audit when missing: ~10 min)
#   --python: the same matching done by a small Python 3.11 script (no install; no yanked check).
# Fails on every advisory (vulnerability, unmaintained, unsound, notice; and yanked with
# cargo-audit) that .cargo/audit.toml does not ignore with a written reason.
# See docs/dependencies.md.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=cargo-audit
if [ "${1:-}" = "--python" ]; then
  mode=python
  shift
fi
db=${1:-${ADVISORY_DB:-../shared/advisory-db}}
if [ ! -d "$db/crates" ]; then
  echo "audit: no advisory database at $db (expected a RustSec advisory-db checkout)" >&2
  exit 2
fi
snapshot=$(sed -n 's/.*commit \([0-9a-f]\{12\}\).* of \([0-9-]*\).*/\1 of \2/p' "$db/SNAPSHOT.txt" 2>/dev/null || true)

if [ "$mode" = cargo-audit ] && ! cargo audit --version >/dev/null 2>&1; then
  echo "== installing cargo-audit"
  cargo install cargo-audit --locked
fi

rc=0
for lock in Cargo.lock fuzz/Cargo.lock scripts/openssl-prebuild/Cargo.lock; do
  [ -f "$lock" ] || continue
  echo "== $mode $lock (advisory-db $snapshot)"
  if [ "$mode" = cargo-audit ]; then
    # --deny warnings: unmaintained/unsound/yanked fail too, unless ignored in .cargo/audit.toml.
    cargo audit --db "$db" --no-fetch --stale --deny warnings --file "$lock" || rc=1
  else
    python3 - "$db" "$lock" .cargo/audit.toml <<'PY' || rc=1
import os, re, sys, tomllib

db, lock, cfg_path = sys.argv[1:4]

def parse_version(s):
    m = re.fullmatch(r"\s*(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?\s*", s)
    if not m:
        raise ValueError(f"bad version {s!r}")
    ma, mi, pa, pre = m.groups()
    pre = () if pre is None else tuple((0, int(x)) if x.isdigit() else (1, x) for x in pre.split("."))
    return int(ma), None if mi is None else int(mi), None if pa is None else int(pa), pre

def K(ma, mi=0, pa=0, pre=()):
    # Total order of versions; a release sorts after its pre-releases.
    return (ma, mi, pa, 0 if pre else 1, pre)

def F(ma, mi=0, pa=0):
    # Below every pre-release of ma.mi.pa: the exclusive upper bound that a caret, a tilde or a
    # partial version implies (0.25.0-alpha.3 is not in ^0.24.3).
    return (ma, mi, pa, 0, ((-1, 0),))

LOWEST = F(0)
HIGHEST = (float("inf"),)

def bounds(c):
    """(low, low inclusive, high, high inclusive) of one comparator, as the Rust `semver` crate
    reads it; partial versions (`1`, `1.2`) and the default caret operator included."""
    m = re.fullmatch(r"\s*(>=|<=|>|<|=|\^|~)?\s*(.+?)\s*", c)
    op, (ma, mi, pa, pre) = m.group(1) or "^", parse_version(m.group(2))
    if op == "=":
        if pa is not None:
            return K(ma, mi, pa, pre), True, K(ma, mi, pa, pre), True
        if mi is not None:
            return K(ma, mi), True, F(ma, mi + 1), False
        return K(ma), True, F(ma + 1), False
    if op == ">":
        if pa is not None:
            return K(ma, mi, pa, pre), False, HIGHEST, False
        return (K(ma, mi + 1) if mi is not None else K(ma + 1)), True, HIGHEST, False
    if op == ">=":
        return K(ma, mi or 0, pa or 0, pre), True, HIGHEST, False
    if op == "<":
        return LOWEST, True, K(ma, mi or 0, pa or 0, pre), False
    if op == "<=":
        if pa is not None:
            return LOWEST, True, K(ma, mi, pa, pre), True
        return LOWEST, True, (F(ma, mi + 1) if mi is not None else F(ma + 1)), False
    lo = K(ma, mi or 0, pa or 0, pre)
    if op == "~":
        return lo, True, (F(ma, mi + 1) if mi is not None else F(ma + 1)), False
    # caret: the left-most non-zero part may not change
    if ma > 0 or mi is None:
        return lo, True, F(ma + 1), False
    if mi > 0 or pa is None:
        return lo, True, F(0, mi + 1), False
    return lo, True, F(0, 0, pa + 1), False

def in_range(c, v):
    lo, lo_in, hi, hi_in = bounds(c)
    return (lo <= v if lo_in else lo < v) and (v <= hi if hi_in else v < hi)

def matches(req, ver):
    # Plain version order for pre-releases too (as cargo-audit's rustsec crate, unlike the
    # semver crate's rule that a pre-release only matches a comparator naming it).
    v = K(*ver)
    return all(in_range(c, v) for c in req.split(",") if c.strip())

ignore = set()
if os.path.exists(cfg_path):
    with open(cfg_path, "rb") as fh:
        ignore = set(tomllib.load(fh).get("advisories", {}).get("ignore", []))

with open(lock, "rb") as fh:
    packages = tomllib.load(fh).get("package", [])
found = []
for p in packages:
    # Advisories name crates.io crates; path and git packages are not theirs.
    src = p.get("source", "")
    if not src.startswith(("registry+https://github.com/rust-lang/crates.io-index",
                           "sparse+https://index.crates.io/")):
        continue
    d = os.path.join(db, "crates", p["name"])
    if not os.path.isdir(d):
        continue
    v = parse_version(p["version"])
    for f in sorted(os.listdir(d)):
        if not f.endswith(".md"):
            continue
        text = open(os.path.join(d, f), encoding="utf-8").read()
        m = re.match(r"```toml\n(.*?)\n```", text, re.S)
        if not m:
            print(f"audit: {f}: no TOML front matter", file=sys.stderr)
            sys.exit(2)
        adv = tomllib.loads(m.group(1))
        a, vers = adv["advisory"], adv.get("versions", {})
        if a.get("withdrawn") or a["id"] in ignore:
            continue
        if any(matches(r, v) for r in vers.get("patched", []) + vers.get("unaffected", [])):
            continue
        kind = a.get("informational") or "vulnerability"
        title = text[m.end():].strip().splitlines()[0].lstrip("# ")
        found.append(f'{p["name"]} {p["version"]}: {a["id"]} ({kind}) {title}')
print(f"   {len(packages)} packages in {lock}; {len(found)} advisories match")
for f in found:
    print("   " + f)
sys.exit(1 if found else 0)
PY
  fi
done
exit $rc
