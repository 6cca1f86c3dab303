//! pantry's CA: created once with a private key file, reused, supplied CAs (RSA) accepted, and clear
//! errors for broken or unwritable set-ups.

mod common;

use std::path::Path;

use common::{start_pantry, upstream::FakeUpstream, Sender};
use pantry::{
    config::{HostPattern, ResolveRule},
    mitm::{Authority, CaError},
};

#[test]
fn created_once_with_a_private_key_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let first = Authority::load_or_create(&certs).unwrap();
    let key = certs.join("ca.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "ca.key must be readable by its owner only");
    }
    assert!(first.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    let key_text = std::fs::read_to_string(&key).unwrap();
    let second = Authority::load_or_create(&certs).unwrap();
    assert_eq!(first.ca_pem(), second.ca_pem(), "an existing CA is reused");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), key_text, "the key is never rewritten");
    let (_, cert) = x509_parser::pem::parse_x509_pem(first.ca_pem().as_bytes()).unwrap();
    let cert = cert.parse_x509().unwrap();
    assert!(cert.is_ca());
    assert_eq!(cert.public_key().algorithm.algorithm.to_id_string(), "1.2.840.10045.2.1", "EC key");
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    Authority::load_or_create(&a).unwrap();
    Authority::load_or_create(&b).unwrap();
    std::fs::copy(b.join("ca.key"), a.join("ca.key")).unwrap();
    let error = Authority::load_or_create(&a).unwrap_err();
    assert!(matches!(error, CaError::Mismatch { .. }), "{error}");
    assert!(error.to_string().contains("does not match"), "{error}");
}

#[test]
fn unreadable_or_partial_ca_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("ca.pem"), "not a certificate").unwrap();
    let partial = Authority::load_or_create(&certs).unwrap_err();
    assert!(matches!(partial, CaError::Incomplete { .. }), "{partial}");
    assert!(!certs.join("ca.key").exists(), "an incomplete CA is never completed with a new key");
    std::fs::write(certs.join("ca.key"), "garbage").unwrap();
    let bad_key = Authority::load_or_create(&certs).unwrap_err();
    assert!(matches!(bad_key, CaError::Key { .. }), "{bad_key}");
}

#[test]
fn certs_dir_that_cannot_be_created_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let error = Authority::load_or_create(&file.join("certs")).unwrap_err();
    assert!(matches!(error, CaError::Write { .. }), "{error}");
    assert!(error.to_string().contains("writable"), "{error}");
}

fn install_rsa_ca(certs: &Path) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rsa-ca");
    std::fs::create_dir_all(certs).unwrap();
    std::fs::copy(fixtures.join("ca.pem"), certs.join("ca.pem")).unwrap();
    std::fs::copy(fixtures.join("ca-key.pem"), certs.join("ca.key")).unwrap();
}

#[tokio::test]
async fn a_supplied_rsa_ca_signs_leaves_that_clients_trust() {
    let upstream = FakeUpstream::start("127.0.0.1:0", true).await;
    let port = upstream.port();
    let ca_file = upstream.ca.ca_file.clone();
    let pantry = start_pantry(|c| {
        install_rsa_ca(&c.startup.certs_dir);
        c.live.intercept = vec![HostPattern::parse(&format!("registry.test:{port}")).unwrap()];
        c.startup.resolve = vec![ResolveRule::parse(&format!("registry.test:{port}:127.0.0.1")).unwrap()];
        c.startup.upstream_ca = vec![ca_file];
    })
    .await;
    assert!(pantry.pantry.authority().ca_pem().contains("BEGIN CERTIFICATE"));
    let target = format!("registry.test:{port}");
    // `intercepted` trusts exactly the CA pantry serves: here the supplied RSA one.
    let stream = common::intercepted(&pantry, &target, &[b"http/1.1"]).await;
    let (response, _) = Sender::h1(stream).await.get("/echo", &target).await;
    assert_eq!(response.status(), 200);
}
