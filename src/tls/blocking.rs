//! A TLS stream over a std socket with timeouts: the managed server's
//! readiness and replication probes are short synchronous requests, and a
//! TLS-only server answers nothing else.

use std::io;
use std::net::TcpStream;

use rustls::{ClientConnection, StreamOwned};

use super::{ClientTls, explain};

/// `tcp` wrapped in TLS for the server `host`, handshake done.
pub fn connect_blocking(
    tls: &ClientTls,
    host: &str,
    tcp: TcpStream,
) -> io::Result<StreamOwned<ClientConnection, TcpStream>> {
    let name = ClientTls::server_name(host).map_err(io::Error::other)?;
    let conn =
        ClientConnection::new(tls.config(), name).map_err(|e| io::Error::other(explain(&e)))?;
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| io::Error::new(e.kind(), format!("TLS handshake: {e}")))?;
    }
    Ok(stream)
}
