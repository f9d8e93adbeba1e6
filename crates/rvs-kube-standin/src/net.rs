//! The listener and connections, with a switch that makes the server unreachable.
//!
//! While [`Shared::unreachable`] is on, every accepted connection is closed at once and
//! every open one fails on its next read or write, so clients see connection errors,
//! as when the API server is down. (kube-rs retries 503 answers itself for minutes but
//! reports connection errors at once.)

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::server::Shared;

/// A TCP listener that drops what it accepts while the server is unreachable.
pub(crate) struct GatedListener {
    pub(crate) inner: TcpListener,
    pub(crate) shared: Arc<Shared>,
}

impl Listener for GatedListener {
    type Io = GatedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (GatedStream, SocketAddr) {
        loop {
            // axum's accept retries (with a pause) on accept errors.
            let (io, addr) = Listener::accept(&mut self.inner).await;
            if self.shared.unreachable() {
                drop(io);
                continue;
            }
            // Events are small writes that must not wait for Nagle's algorithm.
            let _ = io.set_nodelay(true);
            return (
                GatedStream {
                    io,
                    shared: self.shared.clone(),
                },
                addr,
            );
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// A connection that fails while the server is unreachable.
pub(crate) struct GatedStream {
    io: TcpStream,
    shared: Arc<Shared>,
}

impl GatedStream {
    fn cut(&self) -> Option<io::Error> {
        let reason = "the stand-in API server is unreachable";
        self.shared
            .unreachable()
            .then(|| io::Error::new(io::ErrorKind::ConnectionReset, reason))
    }
}

impl AsyncRead for GatedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(e) = self.cut() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for GatedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.cut() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.cut() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.cut() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
