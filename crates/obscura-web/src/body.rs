//! Response bodies written by blocking code (the vault's readers are
//! `std::io::Read`): the producer runs on a blocking thread and writes into
//! a bounded channel; the response streams from it. A client that stops
//! reading stalls the producer, which gives up after the idle timeout, so
//! memory stays at a few chunks per response whatever the object's size.

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// Bytes per chunk handed to the connection.
const CHUNK: usize = 256 * 1024;

/// A response body fed by a [`ChannelWriter`].
pub struct ChannelBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data)))
    }
}

/// A response body held whole in memory, sent with a Content-Length; the
/// memory budget it was allowed under is released when it is dropped.
pub struct WholeBody {
    data: Option<Bytes>,
    _budget: tokio::sync::OwnedSemaphorePermit,
}

impl WholeBody {
    /// `data`, counted against `budget` until the body is sent or dropped.
    pub fn new(data: Bytes, budget: tokio::sync::OwnedSemaphorePermit) -> WholeBody {
        WholeBody {
            data: Some(data),
            _budget: budget,
        }
    }
}

impl Body for WholeBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Poll::Ready(self.data.take().map(|d| Ok(Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

/// The blocking end: `impl Write`, buffered into chunks.
pub struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
    rt: tokio::runtime::Handle,
    idle: Duration,
}

impl ChannelWriter {
    fn send(&mut self, item: io::Result<Bytes>) -> io::Result<()> {
        let send = tokio::time::timeout(self.idle, self.tx.send(item));
        match self.rt.block_on(send) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the client went away",
            )),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            )),
        }
    }

    /// Copy all of `r` into the body (what is buffered goes first),
    /// reading straight into the chunks handed to the connection: no copy
    /// in between, and a stored object's whole segments are decrypted in
    /// place in them.
    pub fn copy_from(&mut self, r: &mut dyn Read) -> Result<(), String> {
        self.flush().map_err(|e| e.to_string())?;
        loop {
            let mut chunk = BytesMut::zeroed(CHUNK);
            let mut filled = 0;
            while filled < CHUNK {
                match r.read(&mut chunk[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("reading a stored object: {e}")),
                }
            }
            if filled > 0 {
                chunk.truncate(filled);
                self.send(Ok(chunk.freeze())).map_err(|e| e.to_string())?;
            }
            if filled < CHUNK {
                return Ok(());
            }
        }
    }

    /// Abort the response (the client sees a broken body, never a complete-looking one).
    pub fn abort(mut self, why: &str) {
        let _ = self.send(Err(io::Error::other(why.to_string())));
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > CHUNK && !self.buf.is_empty() {
            self.flush()?;
        }
        if data.len() >= CHUNK {
            self.send(Ok(Bytes::copy_from_slice(data)))?;
        } else {
            self.buf.extend_from_slice(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.send(Ok(chunk))
    }
}

/// Run `produce` on a blocking thread, writing the body it returns; an
/// error it returns aborts the body (and is logged without data).
pub fn stream<F>(
    idle: Duration,
    permit: tokio::sync::OwnedSemaphorePermit,
    produce: F,
) -> ChannelBody
where
    F: FnOnce(&mut ChannelWriter) -> Result<(), String> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(4);
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut w = ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
            rt,
            idle,
        };
        match produce(&mut w).and_then(|()| w.flush().map_err(|e| e.to_string())) {
            Ok(()) => {}
            Err(e) => {
                log::warn!("web: response aborted: {e}");
                w.abort(&e);
            }
        }
    });
    ChannelBody { rx }
}
