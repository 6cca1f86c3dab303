#!/usr/bin/python3
"""Minimal Docker registry token server (the "token" auth scheme of distribution 2.8).

GET  /token?service=S&scope=repository:NAME:pull[,push]&...   (Basic auth optional)
POST /token  grant_type=password&username=U&password=P&service=S&scope=...   (containerd's OAuth2 form)
GET  /healthz

The right user/password gets every action it asks for; an anonymous request gets a token that
grants nothing (like Docker Hub for a private repository); a wrong password gets 401.
Tokens are RS256 JWTs whose header carries the signing certificate in x5c; the registry trusts
that certificate through its rootcertbundle.
"""
import argparse
import base64
import datetime
import json
import ssl
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization


def parse_scopes(values):
    access = []
    for scope in values:
        for part in scope.split(" "):
            bits = part.split(":")
            if len(bits) < 3:
                continue
            typ, name, actions = bits[0], ":".join(bits[1:-1]), bits[-1]
            access.append({"type": typ, "name": name, "actions": [a for a in actions.split(",") if a]})
    return access


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    cfg = None

    def log_message(self, fmt, *args):
        sys.stdout.write("%s %s\n" % (self.address_string(), fmt % args))
        sys.stdout.flush()

    def reply(self, code, body, extra=None):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def issue(self, user, password, service, scopes):
        cfg = self.cfg
        if user is not None and (user != cfg.user or password != cfg.password):
            print("token: DENY user=%r service=%r scopes=%r" % (user, service, scopes), flush=True)
            self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]},
                       {"WWW-Authenticate": 'Basic realm="pantry-interop-token"'})
            return
        access = parse_scopes(scopes) if user is not None else []
        now = int(time.time())
        claims = {"iss": cfg.issuer, "sub": user or "", "aud": service or cfg.service,
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex,
                  "access": access}
        token = jwt.encode(claims, cfg.signing_key, algorithm="RS256",
                           headers={"x5c": [cfg.x5c], "typ": "JWT"})
        print("token: ISSUE user=%r service=%r access=%s" % (user, service, json.dumps(access)), flush=True)
        issued = datetime.datetime.utcnow().replace(microsecond=0).isoformat() + "Z"
        self.reply(200, {"token": token, "access_token": token, "expires_in": 300, "issued_at": issued})

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/healthz":
            return self.reply(200, {"ok": True})
        if url.path != "/token":
            return self.reply(404, {"error": "not found"})
        q = parse_qs(url.query)
        user = password = None
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            except Exception:
                return self.reply(400, {"error": "bad basic auth"})
        self.issue(user, password, q.get("service", [None])[0], q.get("scope", []))

    def do_POST(self):
        url = urlsplit(self.path)
        if url.path != "/token":
            return self.reply(404, {"error": "not found"})
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        if form.get("grant_type", [""])[0] != "password":
            return self.reply(400, {"error": "unsupported_grant_type"})
        scopes = form.get("scope", [])
        self.issue(form.get("username", [""])[0], form.get("password", [""])[0],
                   form.get("service", [None])[0], scopes)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--signing-key", required=True)
    ap.add_argument("--signing-cert", required=True)
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--service", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    cfg = ap.parse_args()
    with open(cfg.signing_key, "rb") as f:
        cfg.signing_key = serialization.load_pem_private_key(f.read(), password=None)
    with open(cfg.signing_cert, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    cfg.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    Handler.cfg = cfg
    host, port = cfg.listen.rsplit(":", 1)
    httpd = ThreadingHTTPServer((host, int(port)), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cfg.cert, cfg.key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    print("token server on https://%s" % cfg.listen, flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
