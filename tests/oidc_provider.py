"""A real OpenID Connect provider for the tests, on 127.0.0.1: discovery, a JWKS endpoint with key
rotation, an authorize endpoint that signs in a chosen test user without a form, a token endpoint
that checks the client secret and the PKCE code verifier, a UserInfo endpoint that answers for the
access tokens it issued, and an end_session_endpoint (OpenID Connect RP-Initiated Logout 1.0) that
records each call and sends the browser back to the registered post_logout_redirect_uri; ID and
access tokens are RS256 JWTs. `id_token_staff_claim = False` leaves the staff claim to UserInfo (as a
conformant provider in its default configuration does); `userinfo_override` and `userinfo_status`
make UserInfo answer wrongly.

Written with the same libraries LDE uses (joserfc to sign, Authlib's S256 challenge), not a mock:
LDE talks to it over HTTP exactly as to Entra ID. Chosen over a pip-installable provider because none
that is small, maintained and starts in-process without a database was found; this one is 150 lines.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

CLIENT_ID = "lde-test-client"
CLIENT_SECRET = "test-client-secret-0123456789"


@dataclass
class Grant:
    user: str
    client_id: str
    redirect_uri: str
    nonce: str
    challenge: str


@dataclass
class OidcTestProvider:
    """Start with `start()`; `issuer` is its URL. `user` is who the next authorize request signs in."""

    user: str = "S1042"
    staff_claim: str = "preferred_username"
    keys: list[RSAKey] = field(default_factory=list)
    grants: dict[str, Grant] = field(default_factory=dict)
    jwks_requests: int = 0
    token_requests: list[dict[str, str]] = field(default_factory=list)
    id_token_staff_claim: bool = True
    userinfo_override: dict[str, Any] = field(default_factory=dict)
    userinfo_status: int = 200
    userinfo_requests: int = 0
    access_tokens: dict[str, str] = field(default_factory=dict)  # issued access token -> user
    logouts: list[dict[str, str]] = field(default_factory=list)

    def start(self) -> OidcTestProvider:
        self.keys = [RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(4), "use": "sig"})]
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                provider.get(self)

            def do_POST(self) -> None:
                provider.post(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()

    # -- keys and tokens --------------------------------------------------------------------------
    def rotate(self) -> RSAKey:
        """A new signing key; the old one leaves the JWKS."""
        self.keys = [RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(4), "use": "sig"})]
        return self.keys[0]

    def token(
        self,
        user: str | None = None,
        *,
        audience: str = CLIENT_ID,
        issuer: str | None = None,
        expires_in: int = 300,
        key: RSAKey | None = None,
        staff_claim: bool = True,
        **extra: Any,
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer or self.issuer,
            "sub": f"sub-{user or self.user}",
            "aud": audience,
            "iat": now,
            "nbf": now - 5,
            "exp": now + expires_in,
            **({self.staff_claim: user or self.user} if staff_claim else {}),
            **extra,
        }
        signer = key or self.keys[0]
        return jwt.encode({"alg": "RS256", "kid": signer.kid}, claims, signer)

    # -- HTTP -------------------------------------------------------------------------------------
    def _json(self, handler: BaseHTTPRequestHandler, body: Any, status: int = 200) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def get(self, handler: BaseHTTPRequestHandler) -> None:
        url = urllib.parse.urlsplit(handler.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/.well-known/openid-configuration":
            self._json(
                handler,
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "jwks_uri": f"{self.issuer}/jwks",
                    "userinfo_endpoint": f"{self.issuer}/userinfo",
                    "end_session_endpoint": f"{self.issuer}/logout",
                    "response_types_supported": ["code"],
                    "code_challenge_methods_supported": ["S256"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                },
            )
        elif url.path == "/jwks":
            self.jwks_requests += 1
            self._json(handler, KeySet(list(self.keys)).as_dict(private=False))
        elif url.path == "/userinfo":
            self.userinfo_requests += 1
            auth = handler.headers.get("Authorization", "")
            user = self.access_tokens.get(auth.removeprefix("Bearer "))
            if user is None:
                self._json(handler, {"error": "invalid_token"}, 401)
            elif self.userinfo_status != 200:
                self._json(handler, {"error": "server_error"}, self.userinfo_status)
            else:
                claims = {"sub": f"sub-{user}", self.staff_claim: user, **self.userinfo_override}
                self._json(handler, {k: v for k, v in claims.items() if v is not None})
        elif url.path == "/authorize":
            if query.get("response_type") != "code" or query.get("code_challenge_method") != "S256":
                self._json(handler, {"error": "invalid_request"}, 400)
                return
            code = secrets.token_urlsafe(16)
            self.grants[code] = Grant(
                self.user,
                query["client_id"],
                query["redirect_uri"],
                query.get("nonce", ""),
                query["code_challenge"],
            )
            target = (
                query["redirect_uri"] + "?" + urllib.parse.urlencode({"code": code, "state": query["state"]})
            )
            handler.send_response(302)
            handler.send_header("Location", target)
            handler.end_headers()
        elif url.path == "/logout":
            self.logouts.append(query)
            back = query.get("post_logout_redirect_uri", "")
            if query.get("client_id") != CLIENT_ID or not back.endswith("/auth/signed-out"):
                self._json(handler, {"error": "invalid_request"}, 400)  # not a registered return
                return
            handler.send_response(302)
            handler.send_header("Location", back)
            handler.end_headers()
        else:
            self._json(handler, {"error": "not_found"}, 404)

    def post(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", "0"))
        form = dict(urllib.parse.parse_qsl(handler.rfile.read(length).decode()))
        self.token_requests.append(form)
        if handler.path != "/token":
            self._json(handler, {"error": "not_found"}, 404)
            return
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        auth = handler.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            import base64

            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            client_id, secret = urllib.parse.unquote(client_id), urllib.parse.unquote(secret)
        grant = self.grants.pop(form.get("code", ""), None)
        if client_id != CLIENT_ID or secret != CLIENT_SECRET:
            self._json(handler, {"error": "invalid_client"}, 401)
        elif grant is None or grant.redirect_uri != form.get("redirect_uri"):
            self._json(handler, {"error": "invalid_grant"}, 400)
        elif create_s256_code_challenge(form.get("code_verifier", "")) != grant.challenge:
            self._json(handler, {"error": "invalid_grant", "error_description": "PKCE verifier"}, 400)
        else:
            access_token = self.token(grant.user)
            self.access_tokens[access_token] = grant.user
            self._json(
                handler,
                {
                    "access_token": access_token,
                    "id_token": self.token(
                        grant.user, nonce=grant.nonce, staff_claim=self.id_token_staff_claim
                    ),
                    "token_type": "Bearer",
                    "expires_in": 300,
                },
            )
