// A real OpenID Connect provider (panva/oidc-provider) that the broker's tests mint JWTs from.
//
//   node server.mjs --port P --keys KEYFILE --issuer http://127.0.0.1:P [--ttl SECONDS] [--clients FILE]
//                   [--accounts FILE] [--id-token-ttl SECONDS]
//
// KEYFILE   JWKS of private signing keys. Order matters: the first key of each type signs
//           (oidc-provider's documented rotation rule), later ones are only published.
// --clients JSON array of previously registered clients, re-loaded as static clients so that
//           credentials survive a restart (key rotation restarts this process).
// --accounts JSON object {accountId: {claim: value, ...}}: the people who can sign in with the
//           authorization code flow, re-read on every lookup so tests can add people while the
//           provider runs. The login page (/interaction/UID) asks for a username only, and has a
//           "Deny" button that answers the client with error=access_denied.
// OIDC_PEER_REGISTRATION_TOKEN, when set, is the initial access token that dynamic client
// registration requires; unset means open registration.
//
// Resource indicators (RFC 8707 requires absolute URIs) decide the token's alg and audience:
//   urn:broker:es256                 ES256, aud "urn:broker:es256"
//   urn:broker:aud:<ALG>:<pct-aud>   ALG (RS256 | ES256), aud = percent-decoded <pct-aud>,
//                                    which lets tests ask for non-URI audiences such as
//                                    "sts.amazonaws.com"
//   any other absolute URI           RS256, aud = the resource itself
import { randomBytes } from 'node:crypto';
import { existsSync, fstatSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string' },
    keys: { type: 'string' },
    issuer: { type: 'string' },
    ttl: { type: 'string', default: '600' },
    'id-token-ttl': { type: 'string', default: '3600' },
    clients: { type: 'string' },
    accounts: { type: 'string' },
  },
  strict: true,
});

if (!args.port || !args.keys || !args.issuer) {
  console.error('usage: node server.mjs --port P --keys KEYFILE --issuer URL [--ttl S] [--clients FILE]');
  process.exit(2);
}

const port = Number.parseInt(args.port, 10);
const ttl = Number.parseInt(args.ttl, 10);
if (!Number.isInteger(ttl) || ttl <= 0) {
  console.error(`--ttl must be a positive integer, got ${args.ttl}`);
  process.exit(2);
}
const idTokenTtl = Number.parseInt(args['id-token-ttl'], 10);
if (!Number.isInteger(idTokenTtl) || idTokenTtl <= 0) {
  console.error(`--id-token-ttl must be a positive integer, got ${args['id-token-ttl']}`);
  process.exit(2);
}

const jwks = JSON.parse(readFileSync(args.keys, 'utf8'));
const clients = args.clients ? JSON.parse(readFileSync(args.clients, 'utf8')) : [];
const registrationToken = process.env.OIDC_PEER_REGISTRATION_TOKEN || false;

const SIGNING_ALGS = new Set(['RS256', 'ES256']);
const AUD_PREFIX = 'urn:broker:aud:';
const EXTRA_CLAIMS = 'extra_claims';

function resourceServerFor(resource) {
  let alg = 'RS256';
  let audience = resource;
  if (resource === 'urn:broker:es256') {
    alg = 'ES256';
  } else if (resource.startsWith(AUD_PREFIX)) {
    const rest = resource.slice(AUD_PREFIX.length);
    const sep = rest.indexOf(':');
    alg = sep > 0 ? rest.slice(0, sep) : '';
    try {
      audience = decodeURIComponent(rest.slice(sep + 1));
    } catch {
      audience = '';
    }
    if (!SIGNING_ALGS.has(alg) || !audience) {
      throw new errors.InvalidTarget(`expected ${AUD_PREFIX}<RS256|ES256>:<percent-encoded audience>`);
    }
  }
  return {
    // oidc-provider requires a scope string; client_credentials tokens only carry scope if asked.
    scope: 'broker',
    audience,
    accessTokenTTL: ttl,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg } },
  };
}

function registeredClaims(client) {
  return client?.[EXTRA_CLAIMS];
}

function accounts() {
  if (!args.accounts || !existsSync(args.accounts)) return {};
  return JSON.parse(readFileSync(args.accounts, 'utf8'));
}

// OIDC Core §5.4: which claims each scope releases. `groups` rides with `profile`.
const SCOPE_CLAIMS = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['name', 'groups'],
};

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) {
    chunks.push(chunk);
    if (chunks.reduce((n, c) => n + c.length, 0) > 16384) break;
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function loginPage(uid, client, message) {
  const note = message ? `<p role="alert">${escapeHtml(message)}</p>` : '';
  return `<!doctype html><html lang="en"><head><title>Test IdP sign-in</title></head><body>
<main><h1>Test IdP</h1><p>Sign in to ${escapeHtml(client)}</p>${note}
<form method="post" action="/interaction/${uid}/login">
<label for="username">Username</label> <input id="username" name="username" autocomplete="username" autofocus>
<button type="submit">Sign in</button></form>
<form method="post" action="/interaction/${uid}/abort"><button type="submit">Deny</button></form>
</main></body></html>`;
}

const provider = new Provider(args.issuer, {
  jwks,
  clients,
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  findAccount(_ctx, id) {
    const claims = accounts()[id];
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { ...claims, sub: id }; } };
  },
  claims: SCOPE_CLAIMS,
  // Scope-released claims go into the ID token too (not only /userinfo): the broker signs
  // people in with the ID token alone.
  conformIdTokenClaims: false,
  // Every client is first party here: the person's sign-in grants the requested OIDC scopes
  // without a consent page (oidc-provider's documented "skip consent" recipe).
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    if (!ctx.oidc.session.accountId) return undefined;
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope([...ctx.oidc.requestParamScopes].join(' '));
    await grant.save();
    return grant;
  },
  // RFC 9700 §2.1.1: PKCE for every authorization code, confidential clients included.
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    registration: { enabled: true, initialAccessToken: registrationToken },
    resourceIndicators: {
      enabled: true,
      async getResourceServerInfo(_ctx, resourceIndicator) {
        return resourceServerFor(resourceIndicator);
      },
    },
  },
  extraClientMetadata: {
    properties: [EXTRA_CLAIMS],
    validator(_ctx, key, value) {
      if (key !== EXTRA_CLAIMS || value === undefined) return;
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw new errors.InvalidClientMetadata(`${EXTRA_CLAIMS} must be a JSON object`);
      }
    },
  },
  // Every access token carries the claims registered with its client.
  async extraTokenClaims(ctx, token) {
    const client = ctx.oidc?.client ?? (await provider.Client.find(token.clientId));
    const claims = registeredClaims(client);
    return claims ? structuredClone(claims) : undefined;
  },
  formats: {
    customizers: {
      // The library always sets sub to the client_id for client_credentials tokens (extra claims
      // are spread first and then overwritten); a registered `sub` claim takes precedence here.
      async jwt(_ctx, token, jwt) {
        const sub = token.extra?.sub;
        if (typeof sub === 'string' && sub) {
          jwt.payload.sub = sub;
        }
      },
    },
  },
  ttl: {
    AccessToken: ttl,
    ClientCredentials: ttl,
    IdToken: idTokenTtl,
  },
});

// The login interaction: a username (an account the tests registered), or Deny.
provider.use(async (ctx, next) => {
  const match = /^\/interaction\/([\w-]+)(\/login|\/abort)?$/.exec(ctx.path);
  if (!match) return next();
  const [, uid, action] = match;
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== uid) ctx.throw(400, 'interaction mismatch');
  if (!action && ctx.method === 'GET') {
    ctx.type = 'html';
    ctx.body = loginPage(uid, details.params.client_id);
    return undefined;
  }
  if (ctx.method !== 'POST') ctx.throw(405);
  let result;
  if (action === '/abort') {
    result = { error: 'access_denied', error_description: 'the person declined to sign in' };
  } else {
    const username = (await readForm(ctx.req)).get('username') || '';
    if (!accounts()[username]) {
      ctx.status = 401;
      ctx.type = 'html';
      ctx.body = loginPage(uid, details.params.client_id, 'Unknown username.');
      return undefined;
    }
    result = { login: { accountId: username } };
  }
  ctx.status = 303;
  ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result, {
    mergeWithLastSubmission: false,
  }));
  return undefined;
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider ${args.issuer} listening on 127.0.0.1:${port}`);
});

function shutdown() {
  server.close();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// Exit with the parent: the harness holds a pipe on our stdin, which closes when the parent dies.
if (fstatSync(0).isFIFO()) {
  process.stdin.on('end', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
}
