//! The client side: what the harness trusts and shows. One [`ClientTls`]
//! serves both kinds of connection a run opens: the per-event wire client
//! takes its rustls config, and redis-rs (which builds its own config from
//! PEM bytes) takes the same files, so the two verify the server alike.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, Result};

/// Where the client's certificates come from (`[redis] tls_*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions<'a> {
    /// The CA that signed the server's certificate; none: the system's roots.
    pub ca: Option<&'a Path>,
    /// A client certificate chain and its key, for servers that ask for one.
    pub cert: Option<&'a Path>,
    pub key: Option<&'a Path>,
    /// Accept any server certificate (a self-signed test server).
    pub insecure: bool,
}

/// A TLS client setup, cheap to clone.
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
    ca_pem: Option<Vec<u8>>,
    identity_pem: Option<(Vec<u8>, Vec<u8>)>,
    insecure: bool,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("own_ca", &self.ca_pem.is_some())
            .field("client_cert", &self.identity_pem.is_some())
            .field("insecure", &self.insecure)
            .finish()
    }
}

impl ClientTls {
    pub fn new(options: &TlsOptions) -> Result<ClientTls> {
        let provider = provider();
        let ca_pem = options.ca.map(read).transpose()?;
        let identity_pem = match (options.cert, options.key) {
            (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
            (None, None) => None,
            _ => {
                return Err(Error::Tls(
                    "a client certificate needs its key and a key its certificate: \
                     set both tls_cert and tls_key (--tls-cert, --tls-key)"
                        .into(),
                ));
            }
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?;
        let builder = match options.insecure {
            true => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServer(provider))),
            false => builder.with_root_certificates(roots(options.ca, ca_pem.as_deref())?),
        };
        let config = match (&identity_pem, options.cert) {
            (Some((cert_pem, key_pem)), Some(cert_path)) => {
                let chain = CertificateDer::pem_slice_iter(cert_pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| pem_error(cert_path, "certificate", e))?;
                let key_path = options.key.unwrap_or(cert_path);
                let key = PrivateKeyDer::from_pem_slice(key_pem)
                    .map_err(|e| pem_error(key_path, "private key", e))?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    Error::Tls(format!(
                        "the client certificate {} and key {} do not go together: {e}",
                        cert_path.display(),
                        key_path.display()
                    ))
                })?
            }
            _ => builder.with_no_client_auth(),
        };
        Ok(ClientTls {
            config: Arc::new(config),
            ca_pem,
            identity_pem,
            insecure: options.insecure,
        })
    }

    /// The rustls config of the harness's own connections.
    pub fn config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }

    /// The CA file's PEM; none when the system's roots are trusted.
    pub fn ca_pem(&self) -> Option<&[u8]> {
        self.ca_pem.as_deref()
    }

    /// The client certificate chain's and key's PEM, when there is one.
    pub fn identity_pem(&self) -> Option<(&[u8], &[u8])> {
        (self.identity_pem.as_ref()).map(|(c, k)| (c.as_slice(), k.as_slice()))
    }

    pub fn insecure(&self) -> bool {
        self.insecure
    }

    pub fn has_client_cert(&self) -> bool {
        self.identity_pem.is_some()
    }

    /// The name the server's certificate must carry: the URL's host.
    pub fn server_name(host: &str) -> Result<ServerName<'static>> {
        ServerName::try_from(host.to_string()).map_err(|e| {
            Error::Tls(format!(
                "{host:?} cannot be checked against a certificate: {e}"
            ))
        })
    }
}

/// The process's rustls crypto provider (ring), installed as the default
/// once, because redis-rs builds its configs from the default. rustls
/// 0.23.48 deprecates ring's provider for lacking post-quantum key
/// exchange; aws-lc-rs has it but builds a C library on every fresh
/// machine, and a load test's traffic needs no long-term secrecy.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            // Err: a provider was installed already (by a test); use that one.
            let _ = rustls::crypto::ring::default_provider().install_default();
            CryptoProvider::get_default()
                .cloned()
                .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
        })
        .clone()
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn pem_error(path: &Path, what: &str, e: rustls::pki_types::pem::Error) -> Error {
    Error::Tls(format!("{}: no PEM {what} in it: {e}", path.display()))
}

/// The CA file's certificates, or the system's roots without one.
fn roots(path: Option<&Path>, pem: Option<&[u8]>) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    match (path, pem) {
        (Some(path), Some(pem)) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| pem_error(path, "certificate", e))?;
                roots.add(cert).map_err(|e| {
                    Error::Tls(format!("{}: not a CA certificate: {e}", path.display()))
                })?;
            }
            if roots.is_empty() {
                return Err(Error::Tls(format!(
                    "{}: holds no certificate; tls_ca must be a PEM file with the CA that \
                     signed the server's certificate",
                    path.display()
                )));
            }
        }
        _ => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    Ok(roots)
}

/// `tls_insecure`: any certificate is taken, but the handshake's signatures
/// are still checked, so the connection is encrypted, just not authenticated.
#[derive(Debug)]
struct AcceptAnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
