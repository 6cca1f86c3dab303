#!/usr/bin/python3
"""A small OCI registry client (standard library only) used two ways by the suite:

* describe: read back what a registry really holds for a tag (fixture recording, direct to
  127.0.0.1, trusting the test CA), printed as JSON {top, platforms: {arch: {manifest, config,
  layers, diff_ids}}};
* pull / get-blob: the "python" client row. With --proxy it reaches the registry through pantry,
  opening every tunnel with `CONNECT host:port HTTP/1.0` (no Host header, like Python 3.11's own
  http.client set_tunnel), then speaks HTTP/1.1 inside TLS. It pings /v2/, answers Basic and
  Bearer challenges (token realm fetched through the same proxy), follows CDN redirects without
  sending Authorization to the other host, and verifies every blob against its digest.

Exit status: 0 ok; 1 generic failure; 3 TLS failure; 4 authorization failure (401/403 after
auth). The last line of stderr says why.
"""
import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import sys
from urllib.parse import urlencode, urlsplit

ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")


class AuthError(Exception):
    pass


class Client:
    def __init__(self, ca, proxy=None, user=None, password=None, bearer_override=None):
        self.ctx = ssl.create_default_context(cafile=ca)
        self.ctx.set_alpn_protocols(["http/1.1"])
        self.proxy = proxy
        self.user, self.password = user, password
        self.tokens = {}
        self.bearer_override = bearer_override
        self.log = []

    # --- transport ------------------------------------------------------------------------
    def connect(self, host, port):
        if not self.proxy:
            conn = http.client.HTTPSConnection(host, port, context=self.ctx, timeout=60)
            conn.connect()
            return conn
        phost, pport = self.proxy.rsplit(":", 1)
        sock = socket.create_connection((phost, int(pport)), timeout=60)
        sock.sendall(b"CONNECT %s:%d HTTP/1.0\r\n\r\n" % (host.encode(), port))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            if not chunk:
                raise ConnectionError("proxy closed the connection during CONNECT (got %r)" % head)
            head += chunk
        status = head.split(b"\r\n", 1)[0].decode(errors="replace")
        self.log.append("CONNECT %s:%d HTTP/1.0 -> %s" % (host, port, status))
        if not re.match(r"HTTP/1\.[01] 200", status):
            raise ConnectionError("CONNECT refused: %s" % status)
        conn = http.client.HTTPSConnection(host, port, context=self.ctx, timeout=60)
        conn.sock = self.ctx.wrap_socket(sock, server_hostname=host)
        return conn

    def raw(self, method, url, headers):
        u = urlsplit(url)
        conn = self.connect(u.hostname, u.port or 443)
        path = u.path + ("?" + u.query if u.query else "")
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        self.log.append("%s %s -> %d %s" % (method, url, resp.status, resp.getheader("Cache-Status", "")))
        return resp, body

    # --- auth -----------------------------------------------------------------------------
    def basic(self):
        return "Basic " + base64.b64encode(("%s:%s" % (self.user, self.password)).encode()).decode()

    def bearer(self, challenge):
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        key = (params.get("realm"), params.get("service"), params.get("scope"))
        if key not in self.tokens:
            q = {k: params[k] for k in ("service", "scope") if k in params}
            headers = {"Authorization": self.basic()} if self.user else {}
            resp, body = self.raw("GET", params["realm"] + "?" + urlencode(q), headers)
            if resp.status != 200:
                raise AuthError("token server answered %d: %s" % (resp.status, body[:200]))
            data = json.loads(body)
            self.tokens[key] = data.get("token") or data["access_token"]
        return "Bearer " + self.tokens[key]

    def request(self, method, url, accept=None, redirects=5):
        headers = {"User-Agent": "pantry-interop-regclient/1"}
        if accept:
            headers["Accept"] = accept
        if self.bearer_override:
            headers["Authorization"] = "Bearer " + self.bearer_override
        resp, body = self.raw(method, url, headers)
        if resp.status == 401 and not self.bearer_override:
            challenge = resp.getheader("WWW-Authenticate", "")
            if challenge.lower().startswith("bearer"):
                headers["Authorization"] = self.bearer(challenge)
            elif challenge.lower().startswith("basic") and self.user:
                headers["Authorization"] = self.basic()
            else:
                raise AuthError("401 from %s and no usable credentials (%s)" % (url, challenge))
            resp, body = self.raw(method, url, headers)
        while resp.status in (301, 302, 303, 307, 308) and redirects > 0:
            url = resp.getheader("Location")
            redirects -= 1
            headers.pop("Authorization", None)   # never carry credentials to the CDN
            resp, body = self.raw(method, url, headers)
        if resp.status in (401, 403):
            raise AuthError("%d from %s: %s" % (resp.status, url, body[:200]))
        return resp, body


def base_url(registry):
    return "https://%s/v2/" % registry


def fetch_manifest(c, registry, repo, ref):
    resp, body = c.request("GET", "%s%s/manifests/%s" % (base_url(registry), repo, ref), ACCEPT)
    if resp.status != 200:
        raise RuntimeError("manifest %s:%s -> %d %s" % (repo, ref, resp.status, body[:200]))
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    if ref.startswith("sha256:") and ref != digest:
        raise RuntimeError("manifest %s hashes to %s" % (ref, digest))
    mt = json.loads(body).get("mediaType") or resp.getheader("Content-Type", "").split(";")[0]
    return body, digest, mt


def fetch_blob(c, registry, repo, digest, out=None):
    resp, body = c.request("GET", "%s%s/blobs/%s" % (base_url(registry), repo, digest))
    if resp.status != 200:
        raise RuntimeError("blob %s -> %d %s" % (digest, resp.status, body[:200]))
    got = "sha256:" + hashlib.sha256(body).hexdigest()
    if got != digest:
        raise RuntimeError("blob %s: body hashes to %s (%d bytes)" % (digest, got, len(body)))
    if out:
        with open(os.path.join(out, digest.replace(":", "_")), "wb") as f:
            f.write(body)
    return body


def describe(c, registry, repo, tag, archs, with_blobs=False, out=None):
    top_body, top, top_mt = fetch_manifest(c, registry, repo, tag)
    result = {"top": top, "top_media_type": top_mt, "platforms": {}}
    targets = []
    if top_mt in INDEX_TYPES:
        for m in json.loads(top_body)["manifests"]:
            arch = m.get("platform", {}).get("architecture")
            if archs is None or arch in archs:
                targets.append((arch, m["digest"]))
    else:
        targets.append(("amd64", top))
    for arch, mdigest in targets:
        body, digest, _ = fetch_manifest(c, registry, repo, mdigest) if mdigest != top else (top_body, top, top_mt)
        m = json.loads(body)
        cfg = json.loads(fetch_blob(c, registry, repo, m["config"]["digest"], out))
        if with_blobs:
            for layer in m["layers"]:
                fetch_blob(c, registry, repo, layer["digest"], out)
        result["platforms"][arch] = {
            "manifest": digest, "config": m["config"]["digest"],
            "layers": [layer["digest"] for layer in m["layers"]],
            "diff_ids": cfg.get("rootfs", {}).get("diff_ids", []),
        }
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["describe", "pull", "get-blob"])
    ap.add_argument("--registry", required=True, help="host:port as the client names it")
    ap.add_argument("--repo", required=True)
    ap.add_argument("--tag", default="v1")
    ap.add_argument("--digest", help="for get-blob")
    ap.add_argument("--arch", default="amd64")
    ap.add_argument("--ca", required=True)
    ap.add_argument("--proxy", help="HOST:PORT of pantry")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--bearer", help="send this bearer token as is (no challenge handling)")
    ap.add_argument("--out", help="directory to write blobs into")
    ap.add_argument("--trace", help="file to write the request log to")
    a = ap.parse_args()
    c = Client(a.ca, a.proxy, a.user, a.password, a.bearer)
    if a.out:
        os.makedirs(a.out, exist_ok=True)
    code = 0
    try:
        if a.cmd == "describe":
            print(json.dumps(describe(c, a.registry, a.repo, a.tag, None), indent=1))
        elif a.cmd == "pull":
            c.request("GET", base_url(a.registry))
            print(json.dumps(describe(c, a.registry, a.repo, a.tag, [a.arch], True, a.out), indent=1))
        else:
            fetch_blob(c, a.registry, a.repo, a.digest, a.out)
            print("got %s" % a.digest)
    except ssl.SSLError as e:
        print("TLS error: %s" % e, file=sys.stderr)
        code = 3
    except AuthError as e:
        print("authorization failed: %s" % e, file=sys.stderr)
        code = 4
    except Exception as e:  # noqa: BLE001 - report anything as a failed pull
        print("error: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        code = 1
    if a.trace:
        with open(a.trace, "w") as f:
            f.write("\n".join(c.log) + "\n")
    sys.exit(code)


if __name__ == "__main__":
    main()
