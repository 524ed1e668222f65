"""The demo server under a tool, and the requests of a login (for tools/callgrind_requests.py
and tools/symbol_order.py)."""
import base64, glob, hashlib, http.client, json, os, secrets, socket, subprocess, sys, tempfile, time, urllib.parse

REDIRECT = "http://127.0.0.1/bench/callback"


class Server:
    """`BIN demo` on a free port, started under `wrapper` (a command list; `{out}` in it is the
    output folder), with two confidential clients (RS256, ES256) and limits out of the way."""

    def __init__(self, binary, wrapper, out=None):
        self.out = out or tempfile.mkdtemp()
        os.makedirs(self.out, exist_ok=True)
        for f in glob.glob(self.out + "/cg.out*"): os.remove(f)
        s = socket.socket(); s.bind(("127.0.0.1", 0)); self.port = s.getsockname()[1]; s.close()
        data = tempfile.mkdtemp()
        self.secret = secrets.token_urlsafe(18)
        with open(data + "/clients.toml", "w") as f:
            for cid, extra in (("bench-rs256", ""), ("bench-es256", 'id_token_signed_response_alg = "ES256"\n')):
                f.write(f'[[clients]]\nid = "{cid}"\nsecret = "{self.secret}"\nredirect_uris = ["{REDIRECT}"]\n{extra}\n')
            f.write("[limits]\ntoken_burst = 1000000\ntoken_per_minute = 1000000\n"
                    "callback_burst = 1000000\ncallback_per_minute = 1000000\n"
                    "authorize_burst = 1000000\nauthorize_per_minute = 1000000\n")
        self.issuer = f"http://127.0.0.1:{self.port}"
        cmd = [a.replace("{out}", self.out) for a in wrapper] + [
            binary, "demo", "--listen", f"127.0.0.1:{self.port}", "--issuer", self.issuer,
            "--auto-login", "zhangsan", "--data-dir", data, "--config", data + "/clients.toml"]
        self.log = open(self.out + "/server.log", "w")
        self.p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log, stdin=subprocess.DEVNULL)
        for _ in range(600):
            try:
                c = self.conn(); c.request("GET", "/.well-known/openid-configuration"); r = c.getresponse(); r.read()
                if r.status == 200: break
            except OSError: time.sleep(0.1)
        else:
            sys.exit("server did not start")

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def ctl(self, arg):
        """A `callgrind_control` command to the server (`--zero`, `--dump=NAME`)."""
        subprocess.run(["callgrind_control", arg, str(self.p.pid)], stdout=subprocess.DEVNULL, check=True)

    def code(self, browser, client="bench-rs256"):
        """Signs `browser` in (the demo's auto-login) and returns a code and its PKCE verifier."""
        st = secrets.token_urlsafe(16); ver = secrets.token_urlsafe(32)
        ch = base64.urlsafe_b64encode(hashlib.sha256(ver.encode()).digest()).rstrip(b"=").decode()
        q = urllib.parse.urlencode(dict(response_type="code", client_id=client, redirect_uri=REDIRECT,
                                        scope="openid profile email", state=st, nonce=st, code_challenge=ch,
                                        code_challenge_method="S256", prompt="login"))
        loc = "/authorize?" + q
        for _ in range(3):
            r = browser.get(loc); assert r.status in (302, 303), (loc, r.status)
            loc = r.getheader("Location")
            if loc.startswith(self.issuer): loc = loc[len(self.issuer):]
        qs = urllib.parse.parse_qs(urllib.parse.urlparse(loc).query)
        return qs["code"][0], ver

    def token(self, c, cv, client="bench-rs256"):
        """Exchanges the code and verifier `cv` on connection `c`; the token response."""
        a = "Basic " + base64.b64encode(f"{client}:{self.secret}".encode()).decode()
        body = urllib.parse.urlencode(dict(grant_type="authorization_code", code=cv[0], redirect_uri=REDIRECT,
                                           code_verifier=cv[1]))
        c.request("POST", "/token", body=body,
                  headers={"Authorization": a, "Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse(); d = r.read(); assert r.status == 200, d
        return json.loads(d)

    def stop(self):
        self.p.terminate(); self.p.wait()


def start(binary, wrapper, out=None):
    return Server(binary, wrapper, out)


class Browser:
    """One keep-alive connection with a cookie jar."""

    def __init__(self, server):
        self.server = server; self.c = server.conn(); self.cookies = {}

    def get(self, path, headers=None):
        h = dict(headers or {})
        if self.cookies: h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            self.c.request("GET", path, headers=h); r = self.c.getresponse(); r.read()
        except (http.client.RemoteDisconnected, ConnectionError):
            self.c = self.server.conn(); self.c.request("GET", path, headers=h); r = self.c.getresponse(); r.read()
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                name, _, val = v.split(";")[0].partition("="); self.cookies[name] = val
        return r
