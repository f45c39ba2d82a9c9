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
        state: Mutex::new(TlsState { conn, unsent: 0 }),
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

/// The TLS write side; dropping it sends close_notify, as dropping a plain
/// write half sends FIN, so Redis closes the connection and the reader ends.
pub(super) struct TlsWriter(Arc<TlsLink>);

impl Drop for TlsWriter {
    fn drop(&mut self) {
        let mut state = self.0.state();
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
