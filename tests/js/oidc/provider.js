// panva's oidc-provider (OpenID certified) on 127.0.0.1 in its default configuration, for
// tests/integration/test_oidc_conformant.py. Only what a client registration needs is configured
// (client_id, client_secret, redirect_uris), plus the accounts: findAccount, and `claims`, which says
// which claims the profile and email scopes release (the default releases `sub` alone). Everything
// else is the provider's default: the development interactions (a login form taking any login, then a
// consent form), PKCE required, ID tokens carrying no profile claims when an access token is issued
// (conformIdTokenClaims), profile claims at the UserInfo endpoint only.
//
// Usage: node provider.js CONFIG.json, where CONFIG holds {"client_id", "client_secret",
// "redirect_uris"}, "accounts" and "port" (0 or absent: any free port, but LDE must know the issuer before it
// starts). Prints one JSON line {"issuer": URL} once listening; stops on SIGTERM or when
// stdin closes (the test process died).
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

// A member of staff signs in with their login (any password: development interactions); the subject is
// the login, and preferred_username the staff id from config.accounts (login -> staff id), so only a
// client that reads UserInfo finds the staff id.
async function findAccount(ctx, id) {
  const staffId = (config.accounts ?? {})[id] ?? id;
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        preferred_username: staffId,
        name: `Staff member ${staffId}`,
        email: `${id}@example.ac.uk`,
        email_verified: true,
      };
    },
  };
}

const server = createServer();
server.listen(config.port ?? 0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: config.client_id,
      client_secret: config.client_secret,
      redirect_uris: config.redirect_uris,
    }],
    findAccount,
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
  });
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
