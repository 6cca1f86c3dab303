# shellcheck shell=bash
# Test CA for the upstream side (registries, token server, CDN) and the token-signing certificate.
#   $CERTS/testca.pem          the upstream CA (given to pantry as --upstream-ca, and to skopeo for pushing)
#   $CERTS/server.pem/.key     leaf for registry.test, cdn.test, localhost, 127.0.0.1
#   $CERTS/token-signer.pem/.key  self-signed RSA cert whose key signs the registry tokens (x5c)
#   $CERTS/pushcerts/          skopeo --dest-cert-dir (ca.crt = test CA)

make_certs() {
  CERTS=$WORK/certs
  mkdir -p "$CERTS/pushcerts"
  (
    set -e
    cd "$CERTS"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -keyout testca.key -out testca.pem \
      -subj "/CN=pantry interop test CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout server.key -out server.csr \
      -subj "/CN=registry.test"
    printf '%s\n' "subjectAltName=DNS:registry.test,DNS:cdn.test,DNS:localhost,IP:127.0.0.1" \
      "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA testca.pem -CAkey testca.key -CAcreateserial -days 2 \
      -sha256 -extfile server.ext -out server.pem
    cat server.pem testca.pem >server-chain.pem
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -keyout token-signer.key \
      -out token-signer.pem -subj "/CN=pantry interop token signer"
    cp testca.pem pushcerts/ca.crt
  ) >"$WORK/logs/certs.log" 2>&1 || die "openssl failed: $(tail_msg "$WORK/logs/certs.log" 5)"
}
