// openid-client (the OpenID Certified relying-party library for Node, by panva) driven against a
// running `wecom-oidc demo --auto-login zhangsan`. Started by tests/interop/run; by hand:
//
//   NODE_PATH=tests/interop/node/node_modules node tests/interop/openid-client.mjs \
//     --issuer http://127.0.0.1:PORT --client-id interop-openid-client \
//     --secret-env INTEROP_OPENID_CLIENT_SECRET \
//     --redirect-uri http://127.0.0.1/interop/openid-client/callback --alg RS256 --negative
//
// Each check prints `ok - NAME`, `not ok - NAME: WHY` or `skip - NAME: SKIPPED (not advertised
// yet) ...`; the last line is `RESULT passed=N failed=M skipped=K` for `run` to add up. The exit
// code is 1 when a check failed.
//
// openid-client does the protocol work (discovery, PKCE, state, nonce, the token request, id_token
// validation, userinfo, refresh, revocation); this file only plays the browser: it follows the
// provider's and the simulator's redirects with a cookie jar until the redirect to the client's
// callback, which it hands to openid-client like a web app's callback handler would.

import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

// The library lives in tests/interop/node/ (pinned by its package-lock.json), not beside this
// file: resolve it from there so the suite runs from any working directory.
const require = createRequire(new URL('./node/package.json', import.meta.url));
const client = await import(require.resolve('openid-client'));

const { values: args } = parseArgs({
  options: {
    issuer: { type: 'string' },
    'client-id': { type: 'string' },
    'secret-env': { type: 'string' },
    'redirect-uri': { type: 'string' },
    alg: { type: 'string', default: 'RS256' },
    username: { type: 'string', default: 'zhangsan' },
    negative: { type: 'boolean', default: false },
    tamper: { type: 'string' },
    // RFC 8628 and RFC 6749 §4.4 scenarios, each with its own client (see clients.toml).
    'device-client-id': { type: 'string' },
    'device-secret-env': { type: 'string' },
    'service-client-id': { type: 'string' },
    'service-secret-env': { type: 'string' },
  },
});
for (const k of ['issuer', 'client-id', 'secret-env', 'redirect-uri']) {
  if (!args[k]) {
    console.error(`openid-client.mjs: --${k} is required`);
    process.exit(2);
  }
}
const issuer = args.issuer;
const clientId = args['client-id'];
const clientSecret = process.env[args['secret-env']];
if (!clientSecret) {
  console.error(`openid-client.mjs: environment variable ${args['secret-env']} is empty`);
  process.exit(2);
}
const redirectUri = args['redirect-uri'];
const alg = args.alg;
// --tamper signature|claim breaks every id_token on its way from the token endpoint to the
// checks above the negative ones: `run` uses it to prove that this suite fails against a provider
// whose signatures or claims are broken.
if (args.tamper && !['signature', 'claim'].includes(args.tamper)) {
  console.error('openid-client.mjs: --tamper takes signature or claim');
  process.exit(2);
}
const label = `[${alg}]`;

const HTTP_TIMEOUT_MS = 10_000;
let passed = 0;
let failed = 0;
let skipped = 0;

/** Runs one named check; a thrown error fails it and is printed, nothing else stops the suite. */
async function check(name, fn) {
  try {
    const note = await fn();
    passed += 1;
    console.log(`ok - ${label} ${name}${note ? ` (${note})` : ''}`);
    return true;
  } catch (e) {
    failed += 1;
    console.log(`not ok - ${label} ${name}: ${describe(e)}`);
    return false;
  }
}

// Refresh, revocation, ES256 and groups have all landed (issues 3 and 4), so a feature missing
// from discovery is now a failure, not a skip.
function skip(name, why) {
  failed += 1;
  console.log(`not ok - ${label} ${name}: no longer advertised: ${why}`);
}

function describe(e) {
  if (!(e instanceof Error)) return String(e);
  const parts = [e.message];
  if (e.code) parts.push(`code=${e.code}`);
  if (e.error) parts.push(`error=${e.error}`);
  if (e.status) parts.push(`status=${e.status}`);
  if (e.cause && e.cause.message) parts.push(`cause: ${e.cause.message}`);
  // RFC 6750 §3: a bearer challenge carries the error code in WWW-Authenticate.
  if (Array.isArray(e.cause)) {
    for (const c of e.cause) {
      if (c && c.parameters && c.parameters.error) parts.push(`${c.scheme} error=${c.parameters.error}`);
    }
  }
  return parts.join('; ');
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

/**
 * Expects `fn` to be rejected with an error whose text matches `pattern`; returns the message so
 * the output shows what openid-client detected. A success, or a failure for another reason, fails
 * the check: a negative test that passes for the wrong reason proves nothing.
 */
async function expectRejection(fn, pattern) {
  let result;
  try {
    result = await fn();
  } catch (e) {
    const text = describe(e);
    assert(pattern.test(text), `rejected, but not for the expected reason ${pattern}: ${text}`);
    return `detected: ${text}`;
  }
  throw new Error(`was accepted (${JSON.stringify(result && result.claims ? result.claims() : result)})`);
}

/** A cookie jar for one loopback host: enough for the provider's and simulator's cookies. */
class Jar {
  #cookies = new Map();
  store(res) {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq > 0) this.#cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
  }
  header() {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/**
 * Plays the browser: follows redirects from `authUrl` until one points at the client's redirect
 * URI and returns that URL (the authorization response, OIDC Core §3.1.2.5).
 */
async function login(authUrl) {
  const jar = new Jar();
  let url = new URL(authUrl);
  for (let hop = 0; hop < 20; hop += 1) {
    const headers = {};
    const cookie = jar.header();
    if (cookie) headers.cookie = cookie;
    const res = await fetch(url, {
      redirect: 'manual',
      headers,
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    });
    jar.store(res);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      const next = new URL(location, url);
      if (next.href.split('?')[0] === redirectUri) return next;
      url = next;
      await res.body?.cancel();
      continue;
    }
    const body = (await res.text()).replace(/\s+/g, ' ').slice(0, 300);
    throw new Error(`login stopped at HTTP ${res.status} ${url.origin}${url.pathname}: ${body}`);
  }
  throw new Error('login did not reach the redirect URI within 20 redirects');
}

/**
 * Plays the person's browser on a page: follows redirects from `start` with `jar` and returns the
 * page it ends on. `ua` is the User-Agent (WeCom's in-app browser signs in without a page).
 */
async function browse(start, jar, ua) {
  let url = new URL(start);
  for (let hop = 0; hop < 20; hop += 1) {
    const headers = { 'user-agent': ua };
    const cookie = jar.header();
    if (cookie) headers.cookie = cookie;
    const res = await fetch(url, { redirect: 'manual', headers, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    jar.store(res);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      url = new URL(location, url);
      await res.body?.cancel();
      continue;
    }
    return { url, status: res.status, body: await res.text() };
  }
  throw new Error('the page did not settle within 20 redirects');
}

const WECOM_UA = 'Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 MicroMessenger/8.0 wxwork/4.1.0';

/** The person scans the QR code with WeCom and taps "Allow" (RFC 8628 §3.3). */
async function approveDevice(verificationUriComplete) {
  const jar = new Jar();
  const page = await browse(verificationUriComplete, jar, WECOM_UA);
  const field = (name) => {
    const m = page.body.match(new RegExp(`name="${name}" value="([^"]*)"`));
    if (!m) throw new Error(`no ${name} on the verification page (HTTP ${page.status}): ${page.body.slice(0, 300)}`);
    return m[1];
  };
  const res = await fetch(new URL('/device', issuer), {
    method: 'POST',
    headers: { cookie: jar.header(), 'user-agent': WECOM_UA },
    body: new URLSearchParams({ user_code: field('user_code'), csrf: field('csrf'), decision: 'approve' }),
    redirect: 'manual',
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  assert(res.status === 200, `the answer was refused: HTTP ${res.status}`);
  await res.body?.cancel();
}

/** A fetch that records the `error` of every token endpoint response. */
function recordTokenErrors(config, errors) {
  const tokenEndpoint = config.serverMetadata().token_endpoint;
  return async (url, options) => {
    const res = await fetch(url, options);
    if (url === tokenEndpoint && !res.ok) {
      const body = await res.clone().json().catch(() => ({}));
      errors.push(body.error);
    }
    return res;
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Discovery with the client registered for this run; `extra` adds client metadata. */
async function discover(extra = {}, auth = client.ClientSecretBasic(clientSecret), id = clientId) {
  const config = await client.discovery(
    new URL(issuer),
    id,
    { id_token_signed_response_alg: alg, ...extra },
    auth,
    // Loopback http only in this test; enableNonRepudiationChecks makes openid-client verify the
    // id_token's JWS signature against jwks_uri (without it, OIDC Core §3.1.3.7 step 6 lets a
    // client trust TLS instead, and a signature test would prove nothing).
    { execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks] },
  );
  return config;
}

/** Starts a login: PKCE S256 (RFC 7636 §4.2), state and nonce, and walks it to the callback. */
async function startLogin(config, scope) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const params = {
    redirect_uri: redirectUri,
    scope,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  };
  // OIDC Core §11: offline_access is honoured with prompt=consent.
  if (scope.split(' ').includes('offline_access')) params.prompt = 'consent';
  const callback = await login(client.buildAuthorizationUrl(config, params));
  return { callback, verifier, state, nonce };
}

function redeem(config, flow, overrides = {}) {
  return client.authorizationCodeGrant(config, flow.callback, {
    pkceCodeVerifier: flow.verifier,
    expectedState: flow.state,
    expectedNonce: flow.nonce,
    idTokenExpected: true,
    ...overrides,
  });
}

/** A fetch that passes every request through and lets `edit` rewrite the token response. */
function tamperTokenResponse(config, edit) {
  const tokenEndpoint = config.serverMetadata().token_endpoint;
  return async (url, options) => {
    const res = await fetch(url, options);
    if (url !== tokenEndpoint || !res.ok) return res;
    const body = await res.json();
    if (typeof body.id_token === 'string') body.id_token = edit(body.id_token);
    const headers = new Headers(res.headers);
    headers.delete('content-length');
    return new Response(JSON.stringify(body), { status: res.status, headers });
  };
}

/** Changes one character in the middle of the signature (the last may carry only padding bits). */
function breakSignature(jwt) {
  const [h, p, s] = jwt.split('.');
  const i = Math.floor(s.length / 2);
  const flipped = s[i] === 'A' ? 'B' : 'A';
  return `${h}.${p}.${s.slice(0, i)}${flipped}${s.slice(i + 1)}`;
}

/** Changes `sub` and keeps the original signature. */
function breakClaim(jwt) {
  const [h, p, s] = jwt.split('.');
  const payload = b64url.decode(p);
  payload.sub = `${payload.sub}-not`;
  return `${h}.${b64url.encode(payload)}.${s}`;
}

const b64url = {
  decode: (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8')),
  encode: (o) => Buffer.from(JSON.stringify(o), 'utf8').toString('base64url'),
};

// ---------------------------------------------------------------------------------------------

let config;
let meta;
const discovered = await check('Discovery 1.0 §4: metadata is discovered and matches the issuer', async () => {
  config = await discover();
  meta = config.serverMetadata();
  if (args.tamper) {
    config[client.customFetch] = tamperTokenResponse(
      config,
      args.tamper === 'signature' ? breakSignature : breakClaim,
    );
  }
  // Discovery 1.0 §4.3: the issuer in the document equals the URL it was fetched for
  // (openid-client enforces it too).
  assert(meta.issuer === issuer, `issuer ${meta.issuer} != ${issuer}`);
  assert(
    (meta.code_challenge_methods_supported ?? []).includes('S256'),
    'code_challenge_methods_supported lacks S256',
  );
  assert(
    meta.authorization_response_iss_parameter_supported === true,
    'authorization_response_iss_parameter_supported is not true (RFC 9207 §3)',
  );
  assert(
    (meta.id_token_signing_alg_values_supported ?? []).includes(alg),
    `id_token_signing_alg_values_supported lacks ${alg}`,
  );
  return `${meta.token_endpoint}`;
});

if (discovered) {
  const scopesSupported = meta.scopes_supported ?? [];
  const claimsSupported = meta.claims_supported ?? [];
  const grantTypes = meta.grant_types_supported ?? ['authorization_code'];
  const hasRefresh = grantTypes.includes('refresh_token');
  const hasRevocation = typeof meta.revocation_endpoint === 'string';
  const scope = ['openid', 'profile', 'email']
    .concat(scopesSupported.includes('groups') ? ['groups'] : [])
    .concat(hasRefresh && scopesSupported.includes('offline_access') ? ['offline_access'] : [])
    .join(' ');

  let flow;
  await check('OIDC Core §3.1.2: code flow with PKCE, state and nonce reaches the callback', async () => {
    flow = await startLogin(config, scope);
    const p = flow.callback.searchParams;
    assert(p.get('code'), 'no code in the authorization response');
    assert(p.get('state') === flow.state, 'state not returned unchanged (RFC 6749 §4.1.2)');
    assert(p.get('iss') === issuer, `iss ${p.get('iss')} != ${issuer} (RFC 9207 §2)`);
    return `scope "${scope}"`;
  });

  let tokens;
  let claims;
  if (flow) {
    await check('OIDC Core §3.1.3.7: token response and id_token are validated by openid-client', async () => {
      tokens = await redeem(config, flow);
      claims = tokens.claims();
      assert(claims, 'no id_token');
      // openid-client checked the JWS signature (non-repudiation), alg, iss, aud, azp, exp, iat
      // and nonce; check the values we expect on top, so a wrong claim fails here by name.
      const header = JSON.parse(Buffer.from(tokens.id_token.split('.')[0], 'base64url'));
      assert(header.alg === alg, `id_token alg ${header.alg} != ${alg}`);
      assert(typeof header.kid === 'string' && header.kid, 'id_token header has no kid');
      assert(claims.iss === issuer, `iss ${claims.iss}`);
      const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
      assert(aud.includes(clientId), `aud ${JSON.stringify(claims.aud)} lacks ${clientId}`);
      assert(claims.nonce === flow.nonce, 'nonce differs');
      const now = Math.floor(Date.now() / 1000);
      assert(claims.exp > now, `exp ${claims.exp} is not in the future`);
      assert(claims.sub === args.username, `sub ${claims.sub} != ${args.username}`);
      assert(tokens.token_type.toLowerCase() === 'bearer', `token_type ${tokens.token_type}`);
      assert(typeof tokens.access_token === 'string' && tokens.access_token, 'no access_token');
      return `sub=${claims.sub}, kid=${header.kid}`;
    });
  }

  if (tokens) {
    await check('OIDC Core §5.3: userinfo answers for the same subject', async () => {
      const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
      assert(info.sub === claims.sub, `userinfo sub ${info.sub}`);
      assert(
        info.preferred_username === args.username,
        `preferred_username ${info.preferred_username}`,
      );
      if (scope.split(' ').includes('groups')) {
        assert(Array.isArray(info.groups), `groups is not an array: ${JSON.stringify(info.groups)}`);
      }
      return `preferred_username=${info.preferred_username}`;
    });
  }

  // Refresh (OIDC Core §12, RFC 6749 §6): runs once discovery advertises the grant.
  let refreshed;
  if (!hasRefresh) {
    skip('OIDC Core §12: refresh_token grant', 'grant_types_supported lacks refresh_token');
  } else if (tokens) {
    await check('OIDC Core §12: refresh_token grant returns new tokens for the same subject', async () => {
      assert(tokens.refresh_token, `no refresh_token for scope "${scope}"`);
      refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
      assert(refreshed.access_token, 'no access_token');
      assert(refreshed.access_token !== tokens.access_token, 'the access token was not renewed');
      const c = refreshed.claims();
      if (c) {
        // OIDC Core §12.2: iss, sub and aud stay those of the original id_token.
        assert(c.iss === claims.iss && c.sub === claims.sub, 'iss/sub changed at refresh');
      }
      const info = await client.fetchUserInfo(config, refreshed.access_token, claims.sub);
      assert(info.sub === claims.sub, 'userinfo with the refreshed token answered another sub');
      return refreshed.refresh_token ? 'refresh token rotated' : 'no new refresh token';
    });
  }

  // Revocation (RFC 7009): runs once discovery advertises the endpoint.
  if (!hasRevocation) {
    skip('RFC 7009: token revocation', 'no revocation_endpoint in discovery');
  } else if (tokens) {
    const live = refreshed ?? tokens;
    await check('RFC 7009 §2.1: a revoked access token is refused at userinfo', async () => {
      await client.tokenRevocation(config, live.access_token, { token_type_hint: 'access_token' });
      return expectRejection(
        () => client.fetchUserInfo(config, live.access_token, claims.sub),
        /error=invalid_token/,
      );
    });
    const refreshToken = live.refresh_token ?? tokens.refresh_token;
    if (refreshToken) {
      await check('RFC 7009 §2.1: a revoked refresh token cannot be used', async () => {
        await client.tokenRevocation(config, refreshToken, { token_type_hint: 'refresh_token' });
        return expectRejection(() => client.refreshTokenGrant(config, refreshToken), /invalid_grant/);
      });
    }
  }

  // RFC 8628: the device authorization grant with openid-client's device-flow functions.
  const deviceId = args['device-client-id'];
  const deviceSecret = deviceId && process.env[args['device-secret-env']];
  if (deviceId && !meta.device_authorization_endpoint) {
    skip('RFC 8628: device authorization grant', 'no device_authorization_endpoint in discovery');
  } else if (deviceId) {
    const device = await discover({}, client.ClientSecretBasic(deviceSecret), deviceId);
    const approved = (async () => {
      const errors = [];
      device[client.customFetch] = recordTokenErrors(device, errors);
      const d = await client.initiateDeviceAuthorization(device, { scope: 'openid profile' });
      assert(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/.test(d.user_code), `user_code ${d.user_code}`);
      const polling = client.pollDeviceAuthorizationGrant(device, d, undefined, {
        signal: AbortSignal.timeout((d.expires_in + 10) * 1000),
      });
      // Another poll between openid-client's: its next one comes too soon and hears
      // slow_down, after which it waits 5 s longer (§3.5).
      await sleep(Math.max(0, d.interval * 1000 - 500));
      const raw = await fetch(meta.token_endpoint, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${deviceId}:${deviceSecret}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: d.device_code }),
      });
      assert((await raw.json()).error === 'authorization_pending', 'a raw poll was not authorization_pending');
      for (let i = 0; i < 50 && !errors.includes('slow_down'); i += 1) await sleep(100);
      assert(errors.includes('slow_down'), `no slow_down seen: ${errors.join(', ')}`);
      await approveDevice(d.verification_uri_complete);
      const tokens = await polling;
      const c = tokens.claims();
      assert(c && c.sub === args.username, `sub ${c && c.sub}`);
      const aud = Array.isArray(c.aud) ? c.aud : [c.aud];
      assert(aud.includes(deviceId), `aud ${JSON.stringify(c.aud)}`);
      const info = await client.fetchUserInfo(device, tokens.access_token, c.sub);
      assert(info.sub === c.sub, 'userinfo answered another sub');
      return `polls: ${errors.join(', ')}; sub=${c.sub}`;
    })();
    const expired = (async () => {
      const d = await client.initiateDeviceAuthorization(device, { scope: 'openid' });
      return expectRejection(
        () => client.pollDeviceAuthorizationGrant(device, d, undefined, {
          signal: AbortSignal.timeout((d.expires_in + 10) * 1000),
        }),
        /expired_token/,
      );
    })();
    await check('RFC 8628 §3.4-3.5: device flow with slow_down completes after approval in WeCom', () => approved);
    await check('RFC 8628 §3.5: an unanswered device code ends in expired_token', () => expired);
    await check('RFC 8628 §3.1: a client without the grant is refused (unauthorized_client)', () =>
      expectRejection(() => client.initiateDeviceAuthorization(config, { scope: 'openid' }), /unauthorized_client/));
  }

  // RFC 6749 §4.4: client_credentials with openid-client.
  const serviceId = args['service-client-id'];
  if (serviceId) {
    const service = await discover({}, client.ClientSecretBasic(process.env[args['service-secret-env']]), serviceId);
    await check('RFC 6749 §4.4: client_credentials issues a token for the client itself', async () => {
      const tokens = await client.clientCredentialsGrant(service, { scope: 'deploy' });
      assert(!tokens.refresh_token && !tokens.id_token, 'a refresh token or id_token came with it (§4.4.3)');
      assert(tokens.scope === 'deploy', `scope ${tokens.scope}`);
      const at = b64url.decode(tokens.access_token.split('.')[1]);
      assert(at.sub === serviceId && at.client_id === serviceId, `sub ${at.sub}`);
      return `sub=${at.sub}, aud=${at.aud}`;
    });
    await check('RFC 6749 §4.4: a client without the grant is refused (unauthorized_client)', () =>
      expectRejection(() => client.clientCredentialsGrant(config, {}), /unauthorized_client/));
  }

  // Negative checks: they prove that openid-client really validates what the checks above rely
  // on, so a broken signature or claim from the provider would make this suite fail.
  if (args.negative) {
    const baseScope = 'openid profile';

    await check('negative: a tampered id_token signature is rejected (RFC 7515 §5.2)', async () => {
      const flow2 = await startLogin(config, baseScope);
      const tampered = await discover();
      tampered[client.customFetch] = tamperTokenResponse(tampered, breakSignature);
      return expectRejection(() => redeem(tampered, flow2), /signature/i);
    });

    await check('negative: a changed claim under the original signature is rejected', async () => {
      const flow2 = await startLogin(config, baseScope);
      const tampered = await discover();
      tampered[client.customFetch] = tamperTokenResponse(tampered, breakClaim);
      return expectRejection(() => redeem(tampered, flow2), /signature/i);
    });

    await check('negative: an id_token from an unexpected iss is rejected (OIDC Core §3.1.3.7 step 2)', async () => {
      const flow2 = await startLogin(config, baseScope);
      // The client believes in another issuer at the same endpoints. Drop the RFC 9207 response
      // parameter so that it is the id_token's iss that is checked, not the redirect's.
      const other = new client.Configuration(
        { ...meta, issuer: `${issuer}/other`, authorization_response_iss_parameter_supported: false },
        clientId,
        { id_token_signed_response_alg: alg },
        client.ClientSecretBasic(clientSecret),
      );
      client.allowInsecureRequests(other);
      client.enableNonRepudiationChecks(other);
      const callback = new URL(flow2.callback);
      callback.searchParams.delete('iss');
      return expectRejection(() => redeem(other, { ...flow2, callback }), /"iss"/);
    });

    await check('negative: an authorization response from another issuer is rejected (RFC 9207 §2.4)', async () => {
      const flow2 = await startLogin(config, baseScope);
      const callback = new URL(flow2.callback);
      callback.searchParams.set('iss', 'https://attacker.invalid');
      return expectRejection(() => redeem(config, { ...flow2, callback }), /"iss"/);
    });

    await check('negative: an id_token for another audience is rejected (OIDC Core §3.1.3.7 step 3)', async () => {
      const flow2 = await startLogin(config, baseScope);
      // The client believes it is "someone-else"; the token request is sent as the real client
      // (client_secret_post, rewritten on the wire), so the id_token's aud is the real client.
      const wrongId = 'someone-else';
      const other = await discover({}, client.ClientSecretPost(clientSecret), wrongId);
      const tokenEndpoint = meta.token_endpoint;
      other[client.customFetch] = async (url, options) => {
        if (url === tokenEndpoint) {
          const body = new URLSearchParams(options.body.toString());
          body.set('client_id', clientId);
          return fetch(url, { ...options, body });
        }
        return fetch(url, options);
      };
      return expectRejection(() => redeem(other, flow2), /"aud"/);
    });

    await check('negative: a nonce mismatch is rejected (OIDC Core §3.1.3.7 step 11)', async () => {
      const flow2 = await startLogin(config, baseScope);
      return expectRejection(
        () => redeem(config, flow2, { expectedNonce: client.randomNonce() }),
        /nonce/,
      );
    });

    await check('negative: an expired id_token is rejected (OIDC Core §3.1.3.7 step 9)', async () => {
      const flow2 = await startLogin(config, baseScope);
      // Shift the client's notion of now two days ahead (clockSkew is added to the local clock):
      // every id_token the provider signs is then expired.
      const late = await discover({ [client.clockSkew]: 2 * 24 * 3600 });
      return expectRejection(() => redeem(late, flow2), /"exp"|expired|timestamp/);
    });

    await check('negative: an unknown access token is refused at userinfo (RFC 6750 §3.1)', async () =>
      expectRejection(
        () => client.fetchUserInfo(config, client.randomState(), claims ? claims.sub : args.username),
        /error=invalid_token/,
      ));

    await check('negative: a code cannot be redeemed twice (RFC 6749 §4.1.2)', async () => {
      const flow2 = await startLogin(config, baseScope);
      await redeem(config, flow2);
      return expectRejection(() => redeem(config, flow2), /invalid_grant/);
    });
  }
}

console.log(`RESULT passed=${passed} failed=${failed} skipped=${skipped}`);
process.exit(failed > 0 ? 1 : 0);
