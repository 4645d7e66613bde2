// One real OpenID Connect provider (npm `oidc-provider`, a certified OP) for
// Gatehouse's single sign-on tests; started by tests/common/oidc.rs.
//
//   OP_PORT          listen on 127.0.0.1:OP_PORT; the issuer is http://127.0.0.1:OP_PORT
//   OP_CLIENT_ID     the one registered client (a confidential web client,
//   OP_CLIENT_SECRET   client_secret_basic at the token endpoint)
//   OP_REDIRECT      its redirect_uri
//   OP_POST_LOGOUT   its post_logout_redirect_uri (optional)
//   OP_BACKCHANNEL   its backchannel_logout_uri (optional; session required, so
//                    logout tokens carry `sid`)
//   OP_USERS         JSON {"login name": {sub, email, email_verified, name,
//                    preferred_username, groups, ...}} (`sub` defaults to the
//                    login name); the dev login form accepts any password; an
//                    unknown name ends at the redirect_uri with access_denied
//   OP_GROUPS_IN_USERINFO_ONLY=1
//                    `groups` only from the userinfo endpoint, not in the ID token
//   OP_KEYS_FILE     where the signing key (an RSA JWK, so RS256) is kept: made on
//                    the first start, reused after, so a restarted provider
//                    signs with the same key (optional; without it, a fresh key)
//
// Prints `ready <issuer>` on stdout once it listens.
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const env = (name, fallback) => {
  const value = process.env[name];
  if (value === undefined || value === '') {
    if (fallback !== undefined) return fallback;
    throw new Error(`op.mjs: ${name} is required`);
  }
  return value;
};

const port = Number(env('OP_PORT'));
const issuer = `http://127.0.0.1:${port}`;
const postLogout = env('OP_POST_LOGOUT', '');
const backchannel = env('OP_BACKCHANNEL', '');
const groupsInUserinfoOnly = env('OP_GROUPS_IN_USERINFO_ONLY', '') === '1';

// login name → claims; `sub` defaults to the login name.
const users = new Map(
  Object.entries(JSON.parse(env('OP_USERS', '{}')))
    .map(([login, claims]) => [login, { sub: login, ...claims }]),
);
const bySub = new Map([...users.values()].map((user) => [user.sub, user]));

function signingKey() {
  const file = env('OP_KEYS_FILE', '');
  if (file && existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256' };
  if (file) writeFileSync(file, JSON.stringify(jwk), { mode: 0o600 });
  return jwk;
}

const client = {
  client_id: env('OP_CLIENT_ID'),
  client_secret: env('OP_CLIENT_SECRET'),
  // A web client may register http redirect URIs for the code flow (only the
  // implicit flow insists on https), so loopback http works as is.
  application_type: 'web',
  redirect_uris: [env('OP_REDIRECT')],
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  id_token_signed_response_alg: 'RS256',
  ...(postLogout ? { post_logout_redirect_uris: [postLogout] } : {}),
  ...(backchannel
    ? { backchannel_logout_uri: backchannel, backchannel_logout_session_required: true }
    : {}),
};

const op = new Provider(issuer, {
  clients: [client],
  jwks: { keys: [signingKey()] },
  // `id` is the session's account id: the user's `sub` (see
  // interactionFinished below), or the typed login name, which works too.
  async findAccount(ctx, id) {
    const user = bySub.get(id) ?? users.get(id);
    if (!user) return undefined;
    return {
      accountId: user.sub,
      // `use` is 'id_token' or 'userinfo'; the provider keeps only the claims
      // the granted scopes map to (see `claims` below).
      async claims(use) {
        const claims = { ...user };
        if (groupsInUserinfoOnly && use === 'id_token') delete claims.groups;
        return claims;
      },
    };
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  // Put every granted claim (email, groups, ...) into the ID token too, not
  // only into userinfo.
  conformIdTokenClaims: false,
  // Confidential clients need no PKCE by default; Gatehouse always sends
  // S256, so insist on it.
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true },
  },
  cookies: { keys: ['gatehouse-test-only-cookie-key'] },
  // oidc-provider refuses outgoing requests (the back-channel logout POST) to
  // special-use addresses such as 127.0.0.0/8 by handing fetch an SSRF-checking
  // dispatcher; the tests' relying party lives on loopback, so drop it.
  fetch: (url, { dispatcher, ...options }) => globalThis.fetch(url, options),
});

// The dev login form makes the typed name the session's account id, and the
// provider uses the account id as `sub` (in ID tokens, userinfo and logout
// tokens). Sign the user in under their `sub` instead, and answer an unknown
// name the way a real provider's failed login ends: access_denied to the
// client's redirect_uri.
const { interactionFinished } = op;
op.interactionFinished = function interactionFinishedWithSub(req, res, result, options) {
  if (result?.login) {
    const user = users.get(result.login.accountId);
    if (!user) {
      return interactionFinished.call(this, req, res, {
        error: 'access_denied',
        error_description: `no such user: ${result.login.accountId}`,
      }, { mergeWithLastSubmission: false });
    }
    result = { ...result, login: { ...result.login, accountId: user.sub } };
  }
  return interactionFinished.call(this, req, res, result, options);
};

op.on('backchannel.error', (ctx, err, c, accountId, sid) => {
  console.error(`op.mjs: back-channel logout to ${c.backchannelLogoutUri} failed (sid ${sid}): ${err.message}`);
});
op.on('server_error', (ctx, err) => console.error('op.mjs: server_error', err));

const server = op.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
server.on('error', (err) => {
  console.error(`op.mjs: cannot listen on 127.0.0.1:${port}: ${err.message}`);
  process.exit(1);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
