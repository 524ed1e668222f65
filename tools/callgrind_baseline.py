#!/usr/bin/env python3
"""Callgrind instructions per request of the bench's static 1 KB baseline (docs/performance.md).
usage: python3 tools/callgrind_baseline.py target/release/examples/bench OUTDIR N /static"""
import http.client, socket, subprocess, sys, time, glob, re, os
BIN, OUT, N = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(OUT, exist_ok=True)
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={OUT}/cg.out.%p", BIN, "--baseline-server", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
path = sys.argv[4] if len(sys.argv) > 4 else "/"
for _ in range(600):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60); c.request("GET", path); r = c.getresponse(); r.read(); break
    except OSError: time.sleep(0.1)
c.request("GET", path); c.getresponse().read()
subprocess.run(["callgrind_control", "--zero", str(p.pid)], stdout=subprocess.DEVNULL)
for _ in range(N):
    c.request("GET", path); r = c.getresponse(); r.read(); assert r.status == 200
subprocess.run(["callgrind_control", "--dump=static", str(p.pid)], stdout=subprocess.DEVNULL)
p.terminate(); p.wait()
for f in glob.glob(OUT + "/cg.out*"):
    t = open(f, errors="replace").read()
    if "dump static" in t:
        print("static", int(re.search(r"^summary: (\d+)", t, re.M).group(1)) / N)
