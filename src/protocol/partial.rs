//! One connection's unfinished line ([`PartialLine`]): what the
//! [`LineCodec`](crate::protocol::LineCodec) keeps between chunks, and the
//! PROXY header's bytes while one is awaited. One pointer while empty.

/// One connection's unfinished line: the bytes after its last `\n`.
///
/// Empty most of the time, and then it holds no heap memory at all: the
/// buffer is allocated when a chunk ends mid-line and freed as soon as the
/// line is complete. It costs one pointer per connection otherwise.
///
/// # Examples
///
/// ```
/// use std::ops::ControlFlow;
/// use vigil::protocol::{LineCodec, PartialLine};
///
/// let mut partial = PartialLine::default();
/// let codec = LineCodec::default();
/// codec.decode(&mut partial, b"PIN", |_| ControlFlow::Continue(()))?;
/// assert_eq!(partial.len(), 3);
/// codec.decode(&mut partial, b"G\n", |_| ControlFlow::Continue(()))?;
/// assert!(partial.is_empty());
/// # Ok::<(), vigil::protocol::LineTooLong>(())
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PartialLine {
    /// `None` whenever empty: an idle connection holds no buffer. Boxed so
    /// that it costs one pointer, not a `Vec`'s three words.
    buf: Option<Box<Held>>,
}

/// What a [`PartialLine`] holds when it holds something.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Held {
    bytes: Vec<u8>,
    /// The bytes are (the start of) a preamble that comes before the lines,
    /// such as a PROXY protocol header, not a line. Kept here rather than
    /// beside the pointer so that a connection's state stays one pointer.
    preamble: bool,
}

impl PartialLine {
    /// Bytes held.
    pub fn len(&self) -> usize {
        self.buf.as_ref().map_or(0, |held| held.bytes.len())
    }

    /// Whether nothing is held (and no buffer allocated).
    pub fn is_empty(&self) -> bool {
        self.buf.is_none()
    }

    /// Drops the held bytes and frees the buffer.
    pub fn clear(&mut self) {
        self.buf = None;
    }

    /// Makes this connection wait for a preamble before its lines: until
    /// [`clear`](PartialLine::clear), [`preamble`](PartialLine::preamble)
    /// is `Some`, and the codec must not be given bytes. Allocates the
    /// buffer.
    pub(crate) fn expect_preamble(&mut self) {
        self.buf = Some(Box::new(Held {
            bytes: Vec::new(),
            preamble: true,
        }));
    }

    /// The bytes held, if any.
    pub(crate) fn held_mut(&mut self) -> Option<&mut Vec<u8>> {
        self.buf.as_deref_mut().map(|held| &mut held.bytes)
    }

    /// Appends `tail` (no newline in it) to the unfinished line, allocating
    /// the buffer if none is held.
    pub(crate) fn push(&mut self, tail: &[u8]) {
        self.buf
            .get_or_insert_with(Box::default)
            .bytes
            .extend_from_slice(tail);
    }

    /// The preamble bytes received so far, while one is expected.
    pub(crate) fn preamble(&mut self) -> Option<&mut Vec<u8>> {
        self.buf
            .as_deref_mut()
            .filter(|held| held.preamble)
            .map(|held| &mut held.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_connection_costs_one_pointer() {
        assert_eq!(
            std::mem::size_of::<PartialLine>(),
            std::mem::size_of::<usize>()
        );
    }
}
