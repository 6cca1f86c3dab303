//! pantry's certificate authority: loaded from (or created in) the certs directory, minting one leaf
//! per host on demand, cached so that concurrent first requests for a host mint once.
//!
//! The CA key is never logged and never leaves this module except as written to `ca.key` (mode 0600).

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    IsCa, KeyPair, KeyUsagePurpose, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::{crypto::CryptoProvider, sign::CertifiedKey};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

use crate::single_flight::SingleCall;

/// Leaves are valid this long (DESIGN: at most 30 days)…
const LEAF_VALIDITY: time::Duration = time::Duration::days(30);
/// …and re-minted after this long, well before they expire.
const LEAF_CACHE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Hosts whose leaves are kept in memory at most.
const LEAF_CACHE_CAPACITY: u64 = 10_000;

/// Why the CA could not be loaded, created or used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// A CA file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The certs directory or a CA file could not be written.
    #[error("cannot write {path} (is the certs directory writable?): {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Only one of ca.pem and ca.key exists.
    #[error(
        "{present} exists but {missing} does not; supply both or neither (pantry will not overwrite a CA)"
    )]
    Incomplete {
        /// The file found.
        present: PathBuf,
        /// The file missing.
        missing: PathBuf,
    },
    /// The key file is not a usable private key.
    #[error("{path} is not a usable private key (PKCS#8 PEM, ECDSA P-256/P-384, Ed25519 or RSA expected; convert with `openssl pkcs8 -topk8 -nocrypt`): {detail}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// Parser message.
        detail: String,
    },
    /// The certificate file is not a usable CA certificate.
    #[error("{path} is not a usable CA certificate (PEM): {detail}")]
    Cert {
        /// The certificate file.
        path: PathBuf,
        /// Parser message.
        detail: String,
    },
    /// ca.key does not belong to ca.pem.
    #[error("{key} does not match the public key of {cert}")]
    Mismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// Minting a leaf failed.
    #[error("cannot mint a certificate for {host}: {detail}")]
    Mint {
        /// The host.
        host: String,
        /// What failed.
        detail: String,
    },
}

/// The CA and its cache of minted leaves.
pub struct Authority {
    issuer: Certificate,
    key: KeyPair,
    pem: String,
    der: CertificateDer<'static>,
    cert_path: PathBuf,
    leaves: moka::sync::Cache<String, Arc<CertifiedKey>>,
    /// One mint per host however many connections ask at once.
    minting: SingleCall<String, Result<Arc<CertifiedKey>, Arc<CaError>>>,
    minted: AtomicU64,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority").field("cert_path", &self.cert_path).finish_non_exhaustive()
    }
}

impl Authority {
    /// Loads `ca.pem` + `ca.key` from `dir`, or creates a new ECDSA P-256 CA there if neither exists.
    pub fn load_or_create(dir: &Path) -> Result<Self, CaError> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        let (pem, key) = match (cert_path.exists(), key_path.exists()) {
            (true, true) => {
                warn_if_readable(&key_path);
                load(&cert_path, &key_path)?
            }
            (false, false) => create(dir, &cert_path, &key_path)?,
            (true, false) => return Err(CaError::Incomplete { present: cert_path, missing: key_path }),
            (false, true) => return Err(CaError::Incomplete { present: key_path, missing: cert_path }),
        };
        let cert_error = |detail: String| CaError::Cert { path: cert_path.clone(), detail };
        let params = CertificateParams::from_ca_cert_pem(&pem).map_err(|e| cert_error(e.to_string()))?;
        // Re-signing the parsed parameters yields an issuer with the CA's subject and key identifier.
        let issuer = params.self_signed(&key).map_err(|e| cert_error(e.to_string()))?;
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
            .map_err(|e| cert_error(e.to_string()))?;
        Ok(Self {
            issuer,
            key,
            pem,
            der,
            cert_path,
            leaves: moka::sync::Cache::builder()
                .max_capacity(LEAF_CACHE_CAPACITY)
                .time_to_live(LEAF_CACHE_TTL)
                .build(),
            minting: SingleCall::default(),
            minted: AtomicU64::new(0),
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        })
    }

    /// The CA certificate in PEM, exactly as stored.
    pub fn ca_pem(&self) -> &str {
        &self.pem
    }

    /// Where the CA certificate is stored.
    pub fn ca_path(&self) -> &Path {
        &self.cert_path
    }

    /// How many leaves were minted since start.
    pub fn minted(&self) -> u64 {
        self.minted.load(Ordering::Relaxed)
    }

    /// The leaf for `host` (a DNS name or IP literal), minted on first use and cached.
    pub async fn leaf(&self, host: &str) -> Result<Arc<CertifiedKey>, Arc<CaError>> {
        let host = crate::target::bare(host).to_ascii_lowercase();
        if let Some(leaf) = self.leaves.get(&host) {
            return Ok(leaf);
        }
        let mint = || async {
            let leaf = self.mint(&host).map(Arc::new).map_err(Arc::new)?;
            self.leaves.insert(host.clone(), Arc::clone(&leaf));
            Ok(leaf)
        };
        self.minting.run(host.clone(), mint, || {}).await.0
    }

    fn mint(&self, host: &str) -> Result<CertifiedKey, CaError> {
        self.mint_for(host, vec![ExtendedKeyUsagePurpose::ServerAuth])
    }

    /// A fresh leaf for a fleet node reachable as `host` (a DNS name or IP literal): usable both
    /// to serve the fleet port and to present to the other nodes as a client (mutual TLS); the
    /// leaves minted for intercepted hosts are server-only, so none of them opens the fleet port.
    pub fn fleet_leaf(&self, host: &str) -> Result<CertifiedKey, CaError> {
        let host = crate::target::bare(host).to_ascii_lowercase();
        self.mint_for(&host, vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth])
    }

    /// The CA certificate as stored (DER), the one trust anchor of the fleet port.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.der.clone()
    }

    fn mint_for(&self, host: &str, usages: Vec<ExtendedKeyUsagePurpose>) -> Result<CertifiedKey, CaError> {
        let mint_error = |detail: String| CaError::Mint { host: host.to_string(), detail };
        let mut params =
            CertificateParams::new(vec![host.to_string()]).map_err(|e| mint_error(e.to_string()))?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, host);
        params.distinguished_name = name;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + LEAF_VALIDITY;
        params.serial_number = Some(random_serial());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = usages;
        params.use_authority_key_identifier_extension = true;
        let leaf_key =
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|e| mint_error(e.to_string()))?;
        let cert =
            params.signed_by(&leaf_key, &self.issuer, &self.key).map_err(|e| mint_error(e.to_string()))?;
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let signer =
            self.provider.key_provider.load_private_key(key_der).map_err(|e| mint_error(e.to_string()))?;
        self.minted.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(host, "minted leaf certificate");
        Ok(CertifiedKey::new(vec![CertificateDer::from(cert.der().to_vec())], signer))
    }
}

fn load(cert_path: &Path, key_path: &Path) -> Result<(String, KeyPair), CaError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| CaError::Read { path: path.into(), source })
    };
    let pem = read(cert_path)?;
    let key = KeyPair::from_pem(&read(key_path)?)
        .map_err(|e| CaError::Key { path: key_path.into(), detail: e.to_string() })?;
    let cert_error = |detail: String| CaError::Cert { path: cert_path.into(), detail };
    let der = rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
        .map(|der: CertificateDer<'static>| der)
        .map_err(|e| cert_error(e.to_string()))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&der).map_err(|e| cert_error(e.to_string()))?;
    if parsed.tbs_certificate.subject_pki.raw != key.public_key_der().as_slice() {
        return Err(CaError::Mismatch { key: key_path.into(), cert: cert_path.into() });
    }
    Ok((pem, key))
}

fn create(dir: &Path, cert_path: &Path, key_path: &Path) -> Result<(String, KeyPair), CaError> {
    let write_error = |path: &Path, source| CaError::Write { path: path.into(), source };
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    let mint_error = |e: rcgen::Error| CaError::Mint { host: "pantry CA".into(), detail: e.to_string() };
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(mint_error)?;
    let serial = random_serial();
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "pantry");
    let tag: String = serial.as_ref()[..4].iter().map(|b| format!("{b:02x}")).collect();
    name.push(DnType::CommonName, format!("pantry CA {tag}"));
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    params.serial_number = Some(serial);
    let cert = params.self_signed(&key).map_err(mint_error)?;
    write_private(key_path, key.serialize_pem().as_bytes()).map_err(|e| write_error(key_path, e))?;
    std::fs::write(cert_path, cert.pem()).map_err(|e| write_error(cert_path, e))?;
    Ok((cert.pem(), key))
}

/// Warns when the CA key is readable by others than its owner: anyone who can read it can mint
/// certificates every client of this pantry trusts. (Not a refusal: secret volumes are often
/// mounted 0644 behind a directory nobody else can enter.)
fn warn_if_readable(key_path: &Path) {
    let Ok(meta) = std::fs::metadata(key_path) else { return };
    let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
    if mode & 0o077 != 0 {
        tracing::warn!(
            key = %key_path.display(),
            mode = format!("{:o}", mode & 0o777),
            "the CA key is readable by other users: `chmod 600` it (whoever reads it can impersonate any host to pantry's clients)"
        );
    }
}

/// Writes a file readable by its owner only, created with that mode (never briefly wider).
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    // SystemRandom only fails if the OS has no randomness source; then no key could be made either.
    SystemRandom::new().fill(&mut bytes).expect("the OS provides randomness");
    bytes[0] &= 0x7f; // a positive INTEGER
    bytes[0] |= 0x01; // and no leading zero byte to strip
    SerialNumber::from_slice(&bytes)
}
