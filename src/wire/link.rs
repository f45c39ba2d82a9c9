//! The socket under a wire connection: plain TCP, or TLS. TLS is driven by
//! hand (rustls without an I/O wrapper) for the same reason plain writes
//! are: a write goes out from the caller without a task hand-off, and
//! `Writer::sent` still knows which bytes reached the kernel. Plaintext is
//! taken a record's worth at a time and only once the records before it
//! are out, so what is "unsent" is at most one write's records: a record
//! only partly in the kernel cannot be decrypted, so its commands never ran.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::ClientConnection;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::tls::{ClientTls, Negotiated, explain};

/// Plaintext rustls takes per write: one TLS record's worth.
const RECORD: usize = 16 * 1024;

/// Connects over TCP (TCP_NODELAY), then completes the TLS handshake when
/// `tls` is given.
pub(super) async fn connect(
    host: &str,
    port: u16,
    tls: Option<&ClientTls>,
) -> io::Result<(ReadHalf, WriteHalf, Option<Negotiated>)> {
    let tcp = TcpStream::connect((host, port)).await?;
    // Nagle's algorithm would hold a small pipeline until the peer's
    // delayed ACK: ~40 ms added to latencies at modest rates.
    tcp.set_nodelay(true)?;
    let Some(tls) = tls else {
        let (read, write) = tcp.into_split();
        return Ok((ReadHalf::Plain(read), WriteHalf::Plain(write), None));
    };
    let name = ClientTls::server_name(host).map_err(io::Error::other)?;
    let mut conn =
        ClientConnection::new(tls.config(), name).map_err(|e| io::Error::other(explain(&e)))?;
    handshake(&tcp, &mut conn).await?;
    let negotiated = Negotiated::of(&conn);
    let link = Arc::new(TlsLink {
        tcp,
        state: Mutex::new(TlsState {
            conn,
            unsent: 0,
            abandoned: false,
        }),
    });
    Ok((
        ReadHalf::Tls(link.clone()),
        WriteHalf::Tls(TlsWriter(link)),
        negotiated,
    ))
}

pub(super) enum ReadHalf {
    Plain(OwnedReadHalf),
    Tls(Arc<TlsLink>),
}

impl ReadHalf {
    /// Appends what arrives next to `buf`; Ok(0) at the end of the stream.
    pub async fn read_buf(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        match self {
            ReadHalf::Plain(read) => tokio::io::AsyncReadExt::read_buf(read, buf).await,
            ReadHalf::Tls(link) => link.read_buf(buf).await,
        }
    }
}

pub(super) enum WriteHalf {
    /// Dropping it shuts the write side down: Redis sees the close.
    Plain(OwnedWriteHalf),
    Tls(TlsWriter),
}

impl WriteHalf {
    /// Writes what the socket takes now (WouldBlock when nothing).
    pub fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            WriteHalf::Plain(write) => write.try_write(bytes),
            WriteHalf::Tls(TlsWriter(link)) => link.try_write(bytes),
        }
    }

    /// Bytes taken by `try_write` that have not all reached the kernel.
    pub fn unsent(&self) -> usize {
        match self {
            WriteHalf::Plain(_) => 0,
            WriteHalf::Tls(TlsWriter(link)) => link.state().unsent,
        }
    }

    /// Sends what `try_write` took and could not send yet; Ok(true) once
    /// nothing is left.
    pub fn flush(&self) -> io::Result<bool> {
        match self {
            WriteHalf::Plain(_) => Ok(true),
            WriteHalf::Tls(TlsWriter(link)) => link.state().flush(&link.tcp),
        }
    }

    pub async fn writable(&self) -> io::Result<()> {
        match self {
            WriteHalf::Plain(write) => write.writable().await,
            WriteHalf::Tls(TlsWriter(link)) => link.tcp.writable().await,
        }
    }
}

/// The TLS write side. Dropping it ends what the connection writes, as
/// dropping a plain write half sends FIN, so Redis closes the connection
/// and the reader ends. A record still partly unsent is never finished
/// (its bytes were counted as never sent, and the reader's flush must not
/// send them later): the socket's write side is shut instead, and Redis
/// drops the cut-off record. With nothing pending, close_notify says goodbye.
pub(super) struct TlsWriter(Arc<TlsLink>);

impl Drop for TlsWriter {
    fn drop(&mut self) {
        let mut state = self.0.state();
        if state.unsent > 0 {
            state.abandoned = true;
            let _ = socket2::SockRef::from(&self.0.tcp).shutdown(std::net::Shutdown::Write);
            return;
        }
        state.conn.send_close_notify();
        let _ = state.flush(&self.0.tcp);
    }
}

/// One TLS connection, shared by its read and write halves.
pub(super) struct TlsLink {
    tcp: TcpStream,
    state: Mutex<TlsState>,
}

struct TlsState {
    conn: ClientConnection,
    /// Plaintext taken whose records are not all in the kernel yet.
    unsent: usize,
    /// The writer gave up with a record partly unsent: nothing more goes out.
    abandoned: bool,
}

impl TlsLink {
    fn state(&self) -> MutexGuard<'_, TlsState> {
        // A panic while holding the lock left rustls mid-call; the
        // connection's own errors will end it, so carry on.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        let mut state = self.state();
        if !state.flush(&self.tcp)? {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let taken = state
            .conn
            .writer()
            .write(&bytes[..bytes.len().min(RECORD)])?;
        state.unsent = taken;
        state.flush(&self.tcp)?;
        Ok(taken)
    }

    async fn read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let mut ended = false;
        loop {
            {
                let mut state = self.state();
                let mut chunk = [0u8; RECORD];
                match state.conn.reader().read(&mut chunk) {
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        return Ok(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock && ended => return Ok(0),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            self.tcp.readable().await?;
            let mut state = self.state();
            match state.conn.read_tls(&mut Nonblocking(&self.tcp)) {
                Ok(0) => ended = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
            state
                .conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, explain(&e)))?;
            // A key update's answer goes out with the next write if not now.
            state.flush(&self.tcp)?;
        }
    }
}

impl TlsState {
    /// Hands pending records to the kernel; Ok(true) once none are left.
    fn flush(&mut self, tcp: &TcpStream) -> io::Result<bool> {
        if self.abandoned {
            return Ok(false);
        }
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut Nonblocking(tcp)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        self.unsent = 0;
        Ok(true)
    }
}

/// The client's half of the handshake, on a non-blocking socket.
async fn handshake(tcp: &TcpStream, conn: &mut ClientConnection) -> io::Result<()> {
    let refused = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, explain(&e));
    loop {
        while conn.wants_write() {
            match conn.write_tls(&mut Nonblocking(tcp)) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => tcp.writable().await?,
                Err(e) => return Err(e),
            }
        }
        if !conn.is_handshaking() {
            return Ok(());
        }
        tcp.readable().await?;
        match conn.read_tls(&mut Nonblocking(tcp)) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection during the TLS handshake \
                     (does it speak TLS on this port?)",
                ));
            }
            Ok(_) => {
                if let Err(e) = conn.process_new_packets() {
                    // The alert telling the server why goes out first.
                    let _ = conn.write_tls(&mut Nonblocking(tcp));
                    return Err(refused(e));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// A tokio socket as the std `Read`/`Write` rustls pumps records through:
/// WouldBlock instead of waiting.
struct Nonblocking<'a>(&'a TcpStream);

impl Read for Nonblocking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for Nonblocking<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::time::Duration;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use super::*;
    use crate::tls::{TlsFiles, TlsOptions, provider};

    /// A TLS server on a thread that reads nothing until `go`, then answers
    /// every read with +OK and returns the plaintext bytes it decrypted.
    fn stalled_server(
        files: &TlsFiles,
    ) -> (
        u16,
        std::sync::mpsc::Sender<()>,
        std::thread::JoinHandle<u64>,
    ) {
        let chain: Vec<CertificateDer> = CertificateDer::pem_file_iter(&files.server_cert)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(&files.server_key).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .unwrap(),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut s =
                rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), tcp);
            while s.conn.is_handshaking() {
                s.conn.complete_io(&mut s.sock).unwrap();
            }
            wait.recv().unwrap();
            let (mut total, mut buf) = (0u64, vec![0u8; 65536]);
            while let Ok(n @ 1..) = s.read(&mut buf) {
                total += n as u64;
                let _ = s.write_all(b"+OK\r\n").and_then(|()| s.flush());
            }
            total
        });
        (port, go, server)
    }

    /// A writer given up with a record half in the kernel (a producer's
    /// connection declared lost) must not have that record finished later
    /// by the reader: those bytes were counted as never sent.
    #[tokio::test]
    async fn bytes_past_sent_never_reach_the_server_after_the_writer_goes() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles::generate(dir.path()).unwrap();
        let client = ClientTls::new(&TlsOptions {
            ca: Some(&files.ca),
            ..TlsOptions::default()
        })
        .unwrap();
        let (port, go, server) = stalled_server(&files);
        let (mut read, write, _) = connect("127.0.0.1", port, Some(&client)).await.unwrap();
        let data = vec![b'x'; 1 << 20];
        let mut taken = 0u64;
        loop {
            match write.try_write(&data) {
                Ok(n) => taken += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        let sent = taken - write.unsent() as u64;
        assert!(write.unsent() > 0, "the socket filled mid-record");
        drop(write);
        go.send(()).unwrap();
        // The old reader still waits for replies, and flushes as it reads.
        let reader = tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Ok(1..) = read.read_buf(&mut buf).await {
                buf.clear();
            }
        });
        let got = tokio::task::spawn_blocking(move || server.join().unwrap())
            .await
            .unwrap();
        reader.abort();
        assert_eq!(
            got, sent,
            "the server decrypted exactly what was counted sent"
        );
    }
}
