//! One connection's ordered output queue: replies (owned bytes) and pushes
//! (shared [`Bytes`]) in the order they were handed over, written with one
//! `writev` of many segments.
//!
//! # Segments, not one buffer
//!
//! A reply is a few bytes of the callback's write buffer: it is copied into
//! the owned segment at the back of the queue (consecutive replies share
//! one). A push is a [`Bytes`] shared by every recipient: the queue keeps a
//! reference (a slice of what the socket did not take), never a copy. A
//! flush hands the socket up to [`MAX_IOV`] segments in one `writev`, so N
//! messages queued for a peer cost one system call, not N (the NATS
//! server's `flushOutbound`, Netty's `ChannelOutboundBuffer`).
//!
//! # Holds
//!
//! A fan-out whose sender is owed a reply when it completes (see
//! [`Context::fan_out_with_reply`](crate::Context::fan_out_with_reply))
//! leaves a *hold* in the sender's queue: nothing behind it is written until
//! the completion replaces it with the reply's bytes, so replies keep their
//! request order even when a fan-out takes several loop turns.
//!
//! The queue exists only while something is queued: an idle connection
//! holds a `None` (see `ConnIo::output`).

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use bytes::Bytes;

use super::{interrupted, would_block};

/// Segments handed to one `writev` at most. Linux takes up to 1,024
/// (`UIO_MAXIOV`); 128 keeps the slice array on the stack small (2 KiB),
/// and a peer owed more than 128 messages gets several calls per flush,
/// each still carrying up to 128 of them.
pub(crate) const MAX_IOV: usize = 128;

/// Owned reply bytes are appended to the last owned segment while it is
/// shorter than this; then a new one starts, so a drained prefix is freed.
const OWNED_SEGMENT: usize = 16 * 1024;

/// One queued piece of output.
#[derive(Debug)]
enum Segment {
    /// Replies written by callbacks (copied).
    Owned(Vec<u8>),
    /// A pushed payload, shared with its other recipients.
    Shared(Bytes),
    /// A place held for a reply that comes later: a fan-out's
    /// (`HoldKind::FanOut`) or the embedder's (`HoldKind::Reply`).
    Hold(HoldKind),
}

/// Who fills a hold. Each kind is filled in the order its holds were made,
/// independently of the other kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HoldKind {
    /// A fan-out's completion (`Context::fan_out_with_reply`).
    FanOut,
    /// The embedder (`Context::hold_reply`, `LoopContext::fill_reply`).
    Reply,
}

/// Bytes accepted for a peer but not yet taken by its socket. Boxed inside
/// `ConnIo` so that a connection with nothing queued costs one null pointer.
#[derive(Debug, Default)]
pub(crate) struct Output {
    segments: VecDeque<Segment>,
    /// Bytes of the front segment already written.
    head: usize,
    /// Bytes queued, not counting written ones.
    len: usize,
    /// The queue passed the high-water mark (or a push was dropped) since
    /// the last drain report.
    pub(crate) over_high: bool,
    /// Pushes dropped for this connection since the last drain report.
    pub(crate) missed: u64,
}

impl Output {
    /// Bytes queued.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Nothing queued, no hold: the queue may be freed.
    pub(crate) fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Appends reply bytes (copied).
    pub(crate) fn push_owned(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        if let Some(Segment::Owned(last)) = self.segments.back_mut() {
            if last.len() < OWNED_SEGMENT {
                last.extend_from_slice(bytes);
                return;
            }
        }
        self.segments.push_back(Segment::Owned(bytes.to_vec()));
    }

    /// Appends a shared payload: a reference, not a copy.
    pub(crate) fn push_shared(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        self.len += bytes.len();
        self.segments.push_back(Segment::Shared(bytes));
    }

    /// Appends a hold of `kind`: nothing behind it is written until
    /// [`fill_hold`] replaces it.
    ///
    /// [`fill_hold`]: Output::fill_hold
    pub(crate) fn push_hold(&mut self, kind: HoldKind) {
        self.segments.push_back(Segment::Hold(kind));
    }

    /// Unfilled holds of `kind`.
    pub(crate) fn holds(&self, kind: HoldKind) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Hold(k) if *k == kind))
            .count()
    }

    /// Replaces the oldest hold of `kind` with `bytes` (none: removes it).
    /// Returns false when there is no such hold.
    pub(crate) fn fill_hold(&mut self, kind: HoldKind, bytes: &[u8]) -> bool {
        let Some(i) = self
            .segments
            .iter()
            .position(|s| matches!(s, Segment::Hold(k) if *k == kind))
        else {
            return false;
        };
        if bytes.is_empty() {
            self.segments.remove(i);
        } else {
            self.len += bytes.len();
            self.segments[i] = Segment::Owned(bytes.to_vec());
        }
        true
    }

    /// Writes as much as `w` takes, up to the first hold, [`MAX_IOV`]
    /// segments per call, until it would block. Returns the bytes written.
    ///
    /// # Errors
    ///
    /// Those of `w` (not `WouldBlock` or `Interrupted`); a write of zero
    /// bytes is `WriteZero`.
    pub(crate) fn write_to(&mut self, w: &mut impl Write) -> io::Result<usize> {
        let mut written = 0;
        loop {
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let mut count = 0;
            for (i, segment) in self.segments.iter().enumerate() {
                let bytes = match segment {
                    Segment::Owned(v) => &v[..],
                    Segment::Shared(b) => &b[..],
                    Segment::Hold(_) => break,
                };
                slices[count] = IoSlice::new(if i == 0 { &bytes[self.head..] } else { bytes });
                count += 1;
                if count == MAX_IOV {
                    break;
                }
            }
            if count == 0 {
                return Ok(written);
            }
            match w.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.consume(n);
                    written += n;
                }
                Err(err) if would_block(&err) => return Ok(written),
                Err(err) if interrupted(&err) => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// Drops `n` written bytes from the front.
    fn consume(&mut self, mut n: usize) {
        self.len -= n;
        while n > 0 {
            let front = match self.segments.front() {
                Some(Segment::Owned(v)) => v.len(),
                Some(Segment::Shared(b)) => b.len(),
                Some(Segment::Hold(_)) | None => {
                    debug_assert!(false, "consumed past the written segments");
                    return;
                }
            };
            let left = front - self.head;
            if n >= left {
                n -= left;
                self.head = 0;
                self.segments.pop_front();
            } else {
                self.head += n;
                n = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `room` bytes, then blocks; counts calls.
    struct Socket {
        taken: Vec<u8>,
        room: usize,
        calls: usize,
    }

    impl Write for Socket {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut n = 0;
            for buf in bufs {
                let take = buf.len().min(self.room);
                self.taken.extend_from_slice(&buf[..take]);
                self.room -= take;
                n += take;
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn socket(room: usize) -> Socket {
        Socket {
            taken: Vec::new(),
            room,
            calls: 0,
        }
    }

    #[test]
    fn replies_and_pushes_leave_in_order_in_one_call() {
        let mut out = Output::default();
        let shared = Bytes::from_static(b"MSG x\n");
        out.push_owned(b"PONG\n");
        out.push_shared(shared.clone());
        out.push_owned(b"OK 1\n");
        out.push_shared(shared);
        assert_eq!(out.len(), 22);
        let mut s = socket(1000);
        assert_eq!(out.write_to(&mut s).unwrap(), 22);
        assert_eq!(s.taken, b"PONG\nMSG x\nOK 1\nMSG x\n");
        assert_eq!(s.calls, 1, "one writev for all four");
        assert!(out.is_empty());
    }

    #[test]
    fn a_partial_write_resumes_mid_segment() {
        let mut out = Output::default();
        out.push_shared(Bytes::from_static(b"hello "));
        out.push_owned(b"world");
        let mut s = socket(4);
        assert_eq!(out.write_to(&mut s).unwrap(), 4);
        assert_eq!(out.len(), 7);
        s.room = 100;
        out.write_to(&mut s).unwrap();
        assert_eq!(s.taken, b"hello world");
        assert_eq!(out.len(), 0);
    }

    #[test]
    fn nothing_passes_a_hold_until_it_is_filled() {
        let mut out = Output::default();
        out.push_owned(b"A\n");
        out.push_hold(HoldKind::FanOut);
        out.push_owned(b"C\n");
        let mut s = socket(100);
        out.write_to(&mut s).unwrap();
        assert_eq!(s.taken, b"A\n");
        assert!(!out.is_empty());
        assert!(out.fill_hold(HoldKind::FanOut, b"B\n"));
        out.write_to(&mut s).unwrap();
        assert_eq!(s.taken, b"A\nB\nC\n");
        assert!(!out.fill_hold(HoldKind::FanOut, b""), "no hold left");
    }

    #[test]
    fn each_kind_of_hold_is_filled_in_its_own_order() {
        let mut out = Output::default();
        out.push_hold(HoldKind::Reply);
        out.push_hold(HoldKind::FanOut);
        out.push_hold(HoldKind::Reply);
        out.push_owned(b"4\n");
        assert_eq!(out.holds(HoldKind::Reply), 2);
        assert!(out.fill_hold(HoldKind::FanOut, b"2\n"));
        assert!(out.fill_hold(HoldKind::Reply, b"1\n"));
        assert!(!out.fill_hold(HoldKind::FanOut, b"x\n"), "one fan-out hold");
        let mut s = socket(100);
        out.write_to(&mut s).unwrap();
        assert_eq!(s.taken, b"1\n2\n", "stopped at the second reply hold");
        assert!(out.fill_hold(HoldKind::Reply, b"3\n"));
        out.write_to(&mut s).unwrap();
        assert_eq!(s.taken, b"1\n2\n3\n4\n");
        assert_eq!(out.holds(HoldKind::Reply), 0);
    }

    #[test]
    fn an_idle_connection_pays_one_null_pointer_for_its_queue() {
        // Paid by every idle connection: see the memory goal in
        // docs/architecture.md. Push state lives inside the box; the
        // application's timer (4 bytes in `Timing`) took the connection
        // from 80 to 88 bytes.
        assert_eq!(std::mem::size_of::<Option<Box<Output>>>(), 8);
        assert!(
            std::mem::size_of::<super::super::conn::ConnIo>() <= 88,
            "{}",
            std::mem::size_of::<super::super::conn::ConnIo>()
        );
    }

    #[test]
    fn more_segments_than_one_call_takes() {
        let mut out = Output::default();
        let payload = Bytes::from_static(b"m\n");
        for _ in 0..(MAX_IOV * 2 + 1) {
            out.push_shared(payload.clone());
        }
        let mut s = socket(usize::MAX);
        out.write_to(&mut s).unwrap();
        assert_eq!(s.taken.len(), (MAX_IOV * 2 + 1) * 2);
        assert_eq!(s.calls, 3, "three calls: 128 + 128 + 1 segments");
    }
}
