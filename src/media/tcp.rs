//! ICE-TCP: the relay's passive TCP candidate, for networks that block UDP.
//!
//! Browsers connect to the relay's TCP port and frame every packet (STUN, DTLS, SRTP)
//! with a two-byte length (RFC 4571). Each connection gets a small task that reads
//! frames and hands them to the relay loop, and writes what the loop sends back. The
//! loop decides which connections live: one whose first packet belongs to no call, or
//! whose call side has gone, is closed by dropping its sender.
//!
//! What an unauthenticated client can cost is bounded: at most [`MAX_CONNECTIONS`]
//! open at once, a first packet within [`FIRST_PACKET_TIMEOUT`], frames of at most
//! [`MAX_FRAME`] bytes, and at most [`QUEUE`] packets queued each way.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

/// Open ICE-TCP connections at most (two per call when both sides are on TCP).
pub(super) const MAX_CONNECTIONS: usize = 4096;
/// A connection that has not sent a whole packet by then is closed.
const FIRST_PACKET_TIMEOUT: Duration = Duration::from_secs(10);
/// WebRTC packets stay under the path MTU; anything bigger is not ours.
const MAX_FRAME: usize = 4096;
/// Packets queued towards the loop (all connections) or towards one browser. Past it
/// a packet is dropped, as a full UDP buffer would drop it.
pub(super) const QUEUE: usize = 512;

/// An open connection as the loop keeps it.
pub(super) struct TcpConn {
    pub(super) tx: mpsc::Sender<Vec<u8>>,
    pub(super) opened: std::time::Instant,
}

/// What connection tasks tell the relay loop.
pub(super) enum TcpIn {
    Opened(SocketAddr, mpsc::Sender<Vec<u8>>),
    Packet(SocketAddr, Vec<u8>),
    Closed(SocketAddr),
}

/// Accepts connections until the loop goes away.
pub(super) async fn listen(listener: TcpListener, to_loop: mpsc::Sender<TcpIn>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                tracing::debug!("media tcp accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if to_loop.is_closed() {
            return;
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "media tcp: too many connections; refused");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let to_loop = to_loop.clone();
        tokio::spawn(async move {
            connection(stream, peer, to_loop.clone()).await;
            let _ = to_loop.send(TcpIn::Closed(peer)).await;
            drop(permit);
        });
    }
}

async fn connection(stream: TcpStream, peer: SocketAddr, to_loop: mpsc::Sender<TcpIn>) {
    let (mut reader, mut writer) = stream.into_split();
    let (tx, mut from_loop) = mpsc::channel::<Vec<u8>>(QUEUE);
    if to_loop.send(TcpIn::Opened(peer, tx)).await.is_err() {
        return;
    }
    let mut first = true;
    let read = async {
        loop {
            let frame = read_frame(&mut reader);
            let frame = if first {
                first = false;
                match tokio::time::timeout(FIRST_PACKET_TIMEOUT, frame).await {
                    Ok(f) => f,
                    Err(_) => return,
                }
            } else {
                frame.await
            };
            let Some(data) = frame else { return };
            // A full loop queue drops the packet (UDP semantics), never blocks the
            // reader behind a slow loop forever.
            if let Err(mpsc::error::TrySendError::Closed(_)) =
                to_loop.try_send(TcpIn::Packet(peer, data))
            {
                return;
            }
        }
    };
    let write = async {
        // Ends when the loop drops our sender: the connection is not wanted.
        while let Some(packet) = from_loop.recv().await {
            let len = (packet.len() as u16).to_be_bytes();
            if writer.write_all(&len).await.is_err() || writer.write_all(&packet).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = read => {},
        _ = write => {},
    }
}

/// One RFC 4571 frame, or None at the end of the stream or on a frame too big.
async fn read_frame(reader: &mut (impl AsyncReadExt + Unpin)) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    reader.read_exact(&mut len).await.ok()?;
    let len = u16::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return None;
    }
    let mut data = vec![0u8; len];
    reader.read_exact(&mut data).await.ok()?;
    Some(data)
}

/// Whether a packet fits one RFC 4571 frame (its length must fit the two-byte prefix).
pub(super) fn frame_len_ok(len: usize) -> bool {
    len > 0 && len <= u16::MAX as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_read_whole_and_bounded() {
        let mut input: &[u8] = &[0, 3, b'a', b'b', b'c', 0, 1, b'z'];
        assert_eq!(read_frame(&mut input).await.as_deref(), Some(&b"abc"[..]));
        assert_eq!(read_frame(&mut input).await.as_deref(), Some(&b"z"[..]));
        assert_eq!(read_frame(&mut input).await, None);
        let big = [0x20u8, 0x00]; // 8192 bytes announced
        assert_eq!(read_frame(&mut &big[..]).await, None);
        let cut: &[u8] = &[0, 5, b'a'];
        assert_eq!(read_frame(&mut &cut[..]).await, None);
    }
}
