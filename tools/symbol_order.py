#!/usr/bin/env python3
"""Writes the link order of the server's functions (tools/symbol-order.txt, read by build.rs).
usage: python3 tools/symbol_order.py target/release/wecom-oidc [OUTFILE]
       python3 tools/symbol_order.py --check target/release/wecom-oidc

The kernel maps a program's code in 64 KiB runs around each page it touches (fault-around), so
what a start touches, scattered over the binary, keeps most of the binary resident. This runs
`BIN demo` under callgrind, records the functions a start and an idle second execute, then
those of every request kind the bench measures, and lists them in that order: the linker
places them first, together. Regenerate after upgrading Rust, after changing the dependencies
or their features (either renames every function: symbol hashes change), and before a
release."""
import os, re, subprocess, sys, time
import demo_flows

ORDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "symbol-order.txt")


def check(binary):
    """How many listed functions `binary` has, and how far into its code they reach: a list
    that fits the binary puts them all in the first few MiB."""
    listed = [l.strip() for l in open(ORDER) if l.strip()]
    nm = subprocess.run(["nm", "-S", binary], capture_output=True, text=True, check=True).stdout
    at = {}
    for line in nm.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwW":
            at[parts[3]] = (int(parts[0], 16), int(parts[1], 16))
    found = [at[n] for n in listed if n in at]
    if not found:
        sys.exit(f"none of the {len(listed)} listed functions is in {binary}: regenerate the list")
    lo = min(a for a, _ in found); hi = max(a + n for a, n in found)
    size = sum(n for _, n in found)
    print(f"{len(found)} of {len(listed)} listed functions are in {binary}: "
          f"{size / 2**20:.2f} MiB of code, laid out over {(hi - lo) / 2**20:.2f} MiB")


if sys.argv[1] == "--check":
    check(sys.argv[2]); sys.exit(0)
BIN = sys.argv[1]
OUT = sys.argv[2] if len(sys.argv) > 2 else ORDER
server = demo_flows.start(BIN, ["valgrind", "--tool=callgrind", "--demangle=no", "--dump-instr=no",
                                "--callgrind-out-file={out}/cg.out.%p"])
time.sleep(2)
server.ctl("--dump=idle")
b = demo_flows.Browser(server)
for client in ("bench-rs256", "bench-es256"):
    t = server.token(b.c, server.code(b, client), client)
    b.get("/userinfo", {"Authorization": "Bearer " + t["access_token"]})
for path in ("/.well-known/openid-configuration", "/jwks", "/healthz", "/readyz", "/metrics"):
    b.get(path)
server.stop()

def executed(path, binary):
    """Functions of `binary` with an fn= block in the callgrind dump at `path`, in dump order.
    Names are compressed: `(N) name` the first time, in whichever of ob/cob (objects) or fn/cfn
    (functions) comes first, `(N)` after."""
    names = {"ob": {}, "fn": {}}
    out, cur = [], None
    for line in open(path, errors="replace"):
        m = re.match(r"(c?)(ob|fn)=\((\d+)\)(?: (.*))?$", line)
        if not m:
            continue
        kind, ident = m.group(2), m.group(3)
        if m.group(4): names[kind][ident] = m.group(4).strip()
        if m.group(1):
            continue
        if kind == "ob":
            cur = names["ob"].get(ident)
        else:
            name = names["fn"].get(ident)
            if cur and os.path.realpath(cur) == binary and name and not re.search(r"^0x|[ ()]", name):
                out.append(name)
    return out

binary = os.path.realpath(BIN)
dumps = sorted(f for f in os.listdir(server.out) if f.startswith("cg.out"))
idle = [f for f in dumps if re.search(r"\.1$", f)] or dumps[:1]
order, seen = [], set()
for f in idle + [d for d in dumps if d not in idle]:
    for name in executed(os.path.join(server.out, f), binary):
        if name not in seen:
            seen.add(name); order.append(name)
with open(OUT, "w") as f:
    f.write("\n".join(order) + "\n")
print(f"{len(order)} functions ({len(set(executed(os.path.join(server.out, idle[0]), binary)))} at start and idle) -> {OUT}")
