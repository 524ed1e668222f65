#!/usr/bin/env python3
"""Callgrind per-request instruction counts for wecom-oidc endpoints (docs/performance.md).
usage: python3 tools/callgrind_requests.py target/release/wecom-oidc OUTDIR [N]
Starts `BIN demo` under callgrind, prepares a token, then for each phase zeroes the counters,
sends N keep-alive requests and dumps; prints instructions and allocator calls (malloc, calloc,
realloc, aligned forms) per request per phase."""
import sys
import demo_flows
from callgrind_dumps import report

BIN, OUT = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
server = demo_flows.start(BIN, ["valgrind", "--tool=callgrind", "--callgrind-out-file={out}/cg.out.%p",
                                "--dump-instr=no"], OUT)
conn, code, token = server.conn, server.code, server.token
Browser = lambda: demo_flows.Browser(server)

b = Browser()
at = token(b.c, code(b))["access_token"]

ctl = server.ctl

def phase(name, fn, n):
    fn()  # warm
    ctl("--zero")
    for _ in range(n): fn()
    ctl("--dump=" + name)

def simple(path, headers=None):
    c = conn()
    def f():
        c.request("GET", path, headers=headers or {}); r = c.getresponse(); r.read(); assert r.status == 200, (path, r.status)
    return f

phase("discovery", simple("/.well-known/openid-configuration"), N)
phase("jwks", simple("/jwks"), N)
phase("userinfo", simple("/userinfo", {"Authorization": "Bearer " + at}), N)
nt = max(N // 10, 20)
for alg, client in (("rs256", "bench-rs256"), ("es256", "bench-es256")):
    b.c = conn()
    codes = [code(b, client) for _ in range(nt + 1)]
    c = conn()
    it = iter(codes)
    phase("token_" + alg, lambda: token(c, next(it), client), nt)
nl = max(N // 20, 20)
def login():
    bb = Browser(); t = token(bb.c, code(bb)); bb.get("/userinfo", {"Authorization": "Bearer " + t["access_token"]})
phase("login", login, nl)
server.stop()
ns = {"discovery": N, "jwks": N, "userinfo": N, "token_rs256": nt, "token_es256": nt, "login": nl}
report(OUT, ns)
