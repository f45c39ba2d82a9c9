//! A [`FaultProxy`] on a thread and tokio runtime of its own, for a proxy that
//! must forward before the run's actix System exists and whatever that
//! System's one thread is doing: the replication link's proxy carries the
//! replica's initial sync, which the runner waits for synchronously before the
//! run starts. The chaos actor drives it through the shared [`FaultProxy`]
//! handle (its controls are thread-safe); dropping the [`ThreadedProxy`]
//! stops the runtime, which closes the listener and every connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::FaultProxy;
use crate::error::{Error, Result};

#[derive(Debug)]
pub struct ThreadedProxy {
    proxy: Arc<FaultProxy>,
    /// Dropping it ends the runtime thread.
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ThreadedProxy {
    /// Starts a transparent proxy to `upstream` (jitter drawn from `seed`) on a
    /// new thread named `name`, and returns once it listens.
    pub fn start(name: &str, upstream: SocketAddr, seed: u64) -> Result<ThreadedProxy> {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = started_tx.send(Err(Error::proxy("start a runtime", e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let proxy = FaultProxy::start_seeded(upstream, seed).await.map(Arc::new);
                    let up = proxy.is_ok();
                    let _ = started_tx.send(proxy);
                    if up {
                        // Either a stop or the owner gone: the runtime ends here,
                        // dropping every connection task and so its sockets.
                        let _ = stopped.await;
                    }
                });
            })
            .map_err(|e| Error::proxy(format!("spawn the {name} thread"), e))?;
        let proxy = started_rx
            .recv()
            .map_err(|_| Error::Internal(format!("the {name} thread ended before starting")))??;
        Ok(ThreadedProxy {
            proxy,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The proxy's controls, shared with whoever injects its faults.
    pub fn proxy(&self) -> &Arc<FaultProxy> {
        &self.proxy
    }
}

impl Drop for ThreadedProxy {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{Ipv4Addr, TcpListener, TcpStream};
    use std::time::Duration;

    use super::*;
    use crate::proxy::Toxics;

    /// A one-connection echo server on a plain thread.
    fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut conn, _)) = listener.accept() {
                let mut buf = [0u8; 64];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    let _ = conn.write_all(&buf[..n]);
                }
            }
        });
        addr
    }

    /// Works from plain threads with no runtime of their own, holds bytes in a
    /// blackhole, and closes its connections when dropped.
    #[test]
    fn forwards_without_a_runtime_on_the_callers_thread() {
        let proxy = ThreadedProxy::start("test-proxy", echo_server(), 1).unwrap();
        let mut conn = TcpStream::connect(proxy.proxy().addr()).unwrap();
        conn.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut back = [0u8; 2];
        conn.write_all(b"hi").unwrap();
        conn.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"hi");
        proxy.proxy().set(Toxics::blackhole());
        conn.write_all(b"ho").unwrap();
        assert!(conn.read_exact(&mut back).is_err(), "held by the blackhole");
        drop(proxy);
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        let closed = conn.read_to_end(&mut rest);
        assert!(
            matches!(closed, Ok(0)) || closed.is_err(),
            "closed on drop: {closed:?} {rest:?}"
        );
    }
}
