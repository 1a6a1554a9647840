"""Staff authentication and authorisation for the service's HTTP API (issue 15): one module a concern.

- `credentials`: which credential a request presents (pure), and the verified identity it yields;
- `proxy`: trusted reverse proxies that authenticate staff and send X-LDE-Staff;
- `local`: the local operator token, for whoever holds the data folder (the CLI);
- `jwks`, `tokens_jwt`: the provider's keys (cached, refetched on an unknown kid) and JWT checks;
- `oidc`: the sign-in flow (authorization code with PKCE, state, nonce) through Authlib;
- `sessions`: browser sessions in Redis (random id -> staff id, expiry, revocation);
- `api_tokens`: personal API tokens, stored hashed;
- `ratelimit`: token buckets for failed sign-ins and bad tokens per client address;
- `web`: security headers, CSRF and the route guard by kind.
"""
