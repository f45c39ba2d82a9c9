//! A connection for one request at a time, as a consumer uses it: send the
//! packed commands, wait for as many replies, within a response timeout.
//! A failure (closed, reset, timed out) drops the connection; the next
//! request opens a new one, so a restarted Redis is found again.

use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::conn::{Endpoint, Raw, Replies, Writer};

/// Cheap to clone; the clones share the connection and take turns on it.
#[derive(Clone)]
pub struct Session {
    endpoint: Arc<Endpoint>,
    timeout: Duration,
    /// None while no connection is open; taken out during a request.
    link: Rc<tokio::sync::Mutex<Option<(Replies, Writer)>>>,
}

impl Session {
    /// `opened`: a connection made beforehand (before the run clock started).
    pub fn new(
        endpoint: Arc<Endpoint>,
        opened: Option<(Replies, Writer)>,
        timeout: Duration,
    ) -> Session {
        Session {
            endpoint,
            timeout,
            link: Rc::new(tokio::sync::Mutex::new(opened)),
        }
    }

    /// A session of its own to `endpoint`, same timeout: where a cluster
    /// said the keys went (`-MOVED`). Requests still out on this one finish here.
    pub fn moved_to(&self, endpoint: Arc<Endpoint>) -> Session {
        Session::new(endpoint, None, self.timeout)
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends `packed` (`n` commands, RESP-encoded) and returns their replies.
    /// The connection is out of its slot while in use, so a request dropped
    /// half-way (a crashed consumer) closes it rather than leaving its reply
    /// to be read as the next request's.
    pub async fn call(&self, packed: Vec<u8>, n: usize) -> io::Result<Raw> {
        let mut slot = self.link.lock().await;
        let taken = slot.take();
        let exchange = async {
            let (mut replies, mut writer) = match taken {
                Some(link) => link,
                None => self.endpoint.open(self.timeout).await?,
            };
            if !writer.write(&packed)? {
                loop {
                    writer.writable().await?;
                    if writer.flush()? {
                        break;
                    }
                }
            }
            let raw = replies.next_raw(n).await?;
            Ok((replies, writer, raw))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok((replies, writer, raw))) => {
                *slot = Some((replies, writer));
                Ok(raw)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no reply in time")),
        }
    }
}
