//! TLS for every connection the harness opens (docs/tls.md, "TLS"): the
//! client side ([`ClientTls`]: the CA the server must be signed by, a client
//! certificate for servers that ask for one, or loudly none of that), and
//! the throwaway CA of a TLS-only managed server ([`TlsFiles`]). rustls with
//! the ring provider: nothing to install, and the same on every machine.
//!
//! - `client`: what the harness trusts and shows; the process's provider.
//! - `certs`: the throwaway CA and the certificates it signs.
//! - `blocking`: a TLS stream over a std socket, for the server's probes.

mod blocking;
mod certs;
mod client;

pub use blocking::connect_blocking;
pub use certs::TlsFiles;
pub use client::{ClientTls, TlsOptions, provider};

use rustls::{AlertDescription, CertificateError, ClientConnection};

/// What a handshake settled on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// e.g. "TLSv1.3".
    pub version: String,
    /// e.g. "TLS13_AES_256_GCM_SHA384".
    pub cipher: String,
}

impl Negotiated {
    pub fn of(conn: &ClientConnection) -> Option<Negotiated> {
        let version = conn.protocol_version()?;
        let suite = conn.negotiated_cipher_suite()?;
        Some(Negotiated {
            version: version.as_str().unwrap_or("unknown").replace('_', "."),
            cipher: format!("{:?}", suite.suite()),
        })
    }
}

/// A TLS failure in words that say what to change.
pub fn explain(e: &rustls::Error) -> String {
    use rustls::Error as E;
    let hint = match e {
        E::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => {
            "the server's certificate is not signed by a CA this client trusts: set tls_ca \
             (--tls-ca) to the CA file that signed it, or, for a throwaway test server only, \
             tls_insecure = true (--tls-insecure)"
        }
        E::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => {
            "the server's certificate does not carry the URL's host: put a name or address \
             the certificate carries in the URL"
        }
        E::InvalidCertificate(
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. },
        ) => "the server's certificate is outside its validity dates",
        E::AlertReceived(
            AlertDescription::CertificateRequired
            | AlertDescription::HandshakeFailure
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::DecryptError,
        ) => {
            "the server refused the handshake: if it asks clients for a certificate \
             (tls-auth-clients), set tls_cert and tls_key (--tls-cert, --tls-key) to one signed \
             by its tls-ca-cert-file"
        }
        E::InvalidMessage(_) | E::InappropriateMessage { .. } => {
            "the server did not answer in TLS: does it listen for TLS on this port (tls-port)?"
        }
        _ => "",
    };
    match hint {
        "" => format!("TLS: {e}"),
        hint => format!("TLS: {e}: {hint}"),
    }
}
