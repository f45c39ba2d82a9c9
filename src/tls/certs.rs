//! A throwaway certificate authority for a TLS-only managed server: one CA,
//! one certificate for the servers (primary and replica share it; it is
//! also their client certificate on the replication link) and one for the
//! harness when the server asks clients for theirs. Keys are ECDSA P-256,
//! made fresh for every run and gone with its temporary directory.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::error::{Error, Result};

/// The PEM files of a throwaway CA, in the directory they were made in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate clients verify the server with.
    pub ca: PathBuf,
    /// The servers' certificate (names 127.0.0.1 and localhost) and key.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// The harness's client certificate and key, for `tls-auth-clients yes`.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TlsFiles {
    /// Makes a CA and the certificates it signs, written into `dir`.
    pub fn generate(dir: &Path) -> Result<TlsFiles> {
        let made = issue().map_err(|e| Error::Tls(format!("making a throwaway CA: {e}")))?;
        let files = TlsFiles {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        };
        for (path, pem) in [
            (&files.ca, &made[0]),
            (&files.server_cert, &made[1]),
            (&files.server_key, &made[2]),
            (&files.client_cert, &made[3]),
            (&files.client_key, &made[4]),
        ] {
            fs::write(path, pem).map_err(|source| Error::Write {
                path: path.clone(),
                source,
            })?;
        }
        Ok(files)
    }
}

/// CA, server certificate and key, client certificate and key, as PEM.
fn issue() -> std::result::Result<[String; 5], rcgen::Error> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // A name of its own: two throwaway CAs with one name would make a
    // client given the wrong one see a bad signature, not an unknown CA.
    let serial: u64 = rand::random();
    ca.distinguished_name.push(
        DnType::CommonName,
        format!("streamdrill throwaway CA {serial:016x}"),
    );
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let issuer = Issuer::new(ca, ca_key);

    let leaf = |name: &str, names: Vec<String>, usages| -> Result<_, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = usages;
        let cert = params.signed_by(&key, &issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    };
    use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
    let (server_pem, server_key) = leaf(
        "streamdrill managed server",
        vec!["127.0.0.1".into(), "localhost".into()],
        // Redis uses its one certificate both ways: a replica presents it
        // to a primary that asks clients for theirs.
        vec![ServerAuth, ClientAuth],
    )?;
    let (client_pem, client_key) = leaf("streamdrill", Vec::new(), vec![ClientAuth])?;
    Ok([ca_pem, server_pem, server_key, client_pem, client_key])
}
