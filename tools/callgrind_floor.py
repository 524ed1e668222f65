#!/usr/bin/env python3
"""Callgrind instructions and allocator calls per request of the bench's `/token` floor
(examples/bench/floor.rs; docs/performance.md), for each of its clients.
usage: python3 tools/callgrind_floor.py target/release/examples/bench OUTDIR N
Starts `BENCH --floor-server PORT --floor-codes N+10` under callgrind, redeems one code per
client to warm up, then for each client zeroes the counters, redeems N seeded codes on one
keep-alive connection and dumps."""
import base64, glob, http.client, os, re, socket, subprocess, sys, time, urllib.parse
from callgrind_dumps import report

BIN, OUT, N = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(OUT, exist_ok=True)
for f in glob.glob(OUT + "/cg.out*"): os.remove(f)
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={OUT}/cg.out.%p", "--dump-instr=no",
                      BIN, "--floor-server", str(port), "--floor-codes", str(N + 10)],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
for _ in range(3000):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120); c.request("GET", "/ready"); r = c.getresponse(); r.read()
        if r.status == 200: break
    except OSError: time.sleep(0.1)
else:
    sys.exit("the floor did not start")
VERIFIER = "floor-verifier-floor-verifier-floor-verifie"

def redeem(client, i):
    auth = "Basic " + base64.b64encode(f"{client}:{client}-secret".encode()).decode()
    body = urllib.parse.urlencode(dict(grant_type="authorization_code", code=f"{client}-code-{i:08}",
                                       redirect_uri="http://127.0.0.1/bench/callback", code_verifier=VERIFIER))
    c.request("POST", "/token", body=body, headers={"Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse(); d = r.read(); assert r.status == 200, d

def ctl(arg):
    subprocess.run(["callgrind_control", arg, str(p.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)

clients = ["floor-es256", "floor-rs256", "floor-es256-volatile"]
for client in clients:
    redeem(client, N + 9)
for client in clients:
    ctl("--zero")
    for i in range(N): redeem(client, i)
    ctl("--dump=" + client)
p.terminate(); p.wait()
report(OUT, {c: N for c in clients}, 22)
