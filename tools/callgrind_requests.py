#!/usr/bin/env python3
"""Callgrind per-request instruction counts for wecom-oidc endpoints (docs/performance.md).
usage: python3 tools/callgrind_requests.py target/release/wecom-oidc OUTDIR [N]
Starts `BIN demo` under callgrind, prepares a token, then for each phase zeroes the counters,
sends N keep-alive requests and dumps; prints instructions and allocator calls (malloc, calloc,
realloc, aligned forms) per request per phase."""
import base64, hashlib, http.client, os, secrets, socket, subprocess, sys, tempfile, time, urllib.parse, glob, re
from callgrind_dumps import report

BIN, OUT = sys.argv[1], sys.argv[2]
N = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
os.makedirs(OUT, exist_ok=True)
for f in glob.glob(OUT + "/cg.out*"): os.remove(f)
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
data = tempfile.mkdtemp()
secret = secrets.token_urlsafe(18)
redir = "http://127.0.0.1/bench/callback"
with open(data + "/clients.toml", "w") as f:
    f.write(f'[[clients]]\nid = "bench-rs256"\nsecret = "{secret}"\nredirect_uris = ["{redir}"]\n'
            '\n[[clients]]\nid = "bench-es256"\nsecret = "' + secret + f'"\nredirect_uris = ["{redir}"]\nid_token_signed_response_alg = "ES256"\n'
            '\n[limits]\ntoken_burst = 1000000\ntoken_per_minute = 1000000\ncallback_burst = 1000000\ncallback_per_minute = 1000000\n')
issuer = f"http://127.0.0.1:{port}"
cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={OUT}/cg.out.%p", "--dump-instr=no",
       BIN, "demo", "--listen", f"127.0.0.1:{port}", "--issuer", issuer, "--auto-login", "zhangsan",
       "--data-dir", data, "--config", data + "/clients.toml"]
log = open(OUT + "/server.log", "w")
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL)

def conn():
    return http.client.HTTPConnection("127.0.0.1", port, timeout=60)

for _ in range(600):
    try:
        c = conn(); c.request("GET", "/.well-known/openid-configuration"); r = c.getresponse(); r.read()
        if r.status == 200: break
    except OSError: time.sleep(0.1)
else:
    sys.exit("server did not start")

class Browser:
    def __init__(self): self.c = conn(); self.cookies = {}
    def get(self, path, headers=None):
        h = dict(headers or {})
        if self.cookies: h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            self.c.request("GET", path, headers=h); r = self.c.getresponse(); r.read()
        except (http.client.RemoteDisconnected, ConnectionError):
            self.c = conn(); self.c.request("GET", path, headers=h); r = self.c.getresponse(); r.read()
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                nv = v.split(";")[0]; name, _, val = nv.partition("="); self.cookies[name] = val
        return r

def code(b, client="bench-rs256"):
    st = secrets.token_urlsafe(16); ver = secrets.token_urlsafe(32)
    ch = base64.urlsafe_b64encode(hashlib.sha256(ver.encode()).digest()).rstrip(b"=").decode()
    q = urllib.parse.urlencode(dict(response_type="code", client_id=client, redirect_uri=redir, scope="openid profile email",
                                    state=st, nonce=st, code_challenge=ch, code_challenge_method="S256", prompt="login"))
    loc = "/authorize?" + q
    for _ in range(3):
        r = b.get(loc); assert r.status in (302, 303), (loc, r.status)
        loc = r.getheader("Location")
        if loc.startswith(issuer): loc = loc[len(issuer):]
    u = urllib.parse.urlparse(loc); qs = urllib.parse.parse_qs(u.query)
    return qs["code"][0], ver

auth = "Basic " + base64.b64encode(f"bench-rs256:{secret}".encode()).decode()
def token(c, cv, client="bench-rs256"):
    a = "Basic " + base64.b64encode(f"{client}:{secret}".encode()).decode()
    body = urllib.parse.urlencode(dict(grant_type="authorization_code", code=cv[0], redirect_uri=redir, code_verifier=cv[1]))
    c.request("POST", "/token", body=body, headers={"Authorization": a, "Content-Type": "application/x-www-form-urlencoded"})
    r = c.getresponse(); d = r.read(); assert r.status == 200, d
    import json; return json.loads(d)

b = Browser()
at = token(b.c, code(b))["access_token"]

def ctl(arg):
    subprocess.run(["callgrind_control", arg, str(p.pid)], stdout=subprocess.DEVNULL, check=True)

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
p.terminate(); p.wait()
ns = {"discovery": N, "jwks": N, "userinfo": N, "token_rs256": nt, "token_es256": nt, "login": nl}
report(OUT, ns)
