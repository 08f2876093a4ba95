//! Splitting a byte stream into lines, resumably and mostly without copying.
//!
//! # How a chunk is decoded
//!
//! Bytes arrive in chunks that know nothing of line boundaries. For each
//! chunk, [`LineCodec::decode`]:
//!
//! 1. if the connection holds a [`PartialLine`] (the unfinished end of an
//!    earlier chunk), looks for the first `\n` in the new bytes only, appends
//!    what comes before it and hands over the joined line; the partial
//!    buffer is then freed;
//! 2. hands over every further complete line as a slice of the chunk itself:
//!    no copy (the fast path, which is all there is for a client that sends
//!    whole lines);
//! 3. copies the unfinished tail, if any, into the [`PartialLine`].
//!
//! A partial line never holds a `\n`, so no byte is ever searched twice: the
//! scan always resumes at the first byte not yet seen.
//!
//! # Line length
//!
//! A line is too long when it holds more than `max_line` bytes, the `\n` and
//! a `\r` right before it not counted. An unfinished line is refused as soon
//! as it is certain to be too long, without waiting for its newline: a peer
//! cannot make the server buffer more than `max_line + 1` bytes for it.

use std::fmt;
use std::ops::ControlFlow;

use crate::protocol::partial::PartialLine;

/// Splits bytes into lines: `\n` ends a line, a `\r` right before it is
/// dropped, and lines longer than a maximum are refused.
///
/// The codec itself holds only its settings; the per-connection state is a
/// [`PartialLine`], so one codec serves every connection. Lines are bytes:
/// nothing requires UTF-8.
///
/// # Examples
///
/// A line split across two reads, then two lines in one read:
///
/// ```
/// use std::ops::ControlFlow;
/// use vigil::protocol::{LineCodec, PartialLine};
///
/// let codec = LineCodec::new(1024);
/// let mut partial = PartialLine::default();
/// let mut lines = Vec::new();
/// for chunk in [&b"PI"[..], b"NG 1\r\nPING 2\nPING 3\n"] {
///     codec.decode(&mut partial, chunk, |line| {
///         lines.push(line.to_vec());
///         ControlFlow::Continue(())
///     })?;
/// }
/// assert_eq!(lines, [&b"PING 1"[..], b"PING 2", b"PING 3"]);
/// assert!(partial.is_empty()); // nothing held between lines
/// # Ok::<(), vigil::protocol::LineTooLong>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineCodec {
    max_line: usize,
}

impl LineCodec {
    /// A codec that refuses lines longer than `max_line` bytes (newline and
    /// a `\r` before it not counted).
    ///
    /// # Examples
    ///
    /// ```
    /// use vigil::protocol::LineCodec;
    ///
    /// let codec = LineCodec::new(80);
    /// assert_eq!(codec.max_line(), 80);
    /// assert_eq!(LineCodec::default().max_line(), 1024);
    /// ```
    pub fn new(max_line: usize) -> LineCodec {
        LineCodec { max_line }
    }

    /// The longest line accepted, in bytes.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Decodes one chunk of input: calls `on_line` for each complete line,
    /// in order, and keeps an unfinished tail in `partial` for the next
    /// chunk.
    ///
    /// A line is passed without its `\n` and without a `\r` right before it.
    /// When `on_line` returns [`ControlFlow::Break`], decoding stops there
    /// and the rest of the chunk is discarded (the caller is closing the
    /// connection).
    ///
    /// # Errors
    ///
    /// A line is, or is certain to become, longer than
    /// [`max_line`](LineCodec::max_line): [`LineTooLong`]. The lines before
    /// it have been handed to `on_line`; `partial` is left empty and the
    /// stream cannot be resynchronised, so the caller should close.
    ///
    /// # Examples
    ///
    /// An overlong line is refused before its newline arrives:
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use vigil::protocol::{LineCodec, PartialLine};
    ///
    /// let codec = LineCodec::new(4);
    /// let mut partial = PartialLine::default();
    /// let mut on_line = |_: &[u8]| ControlFlow::Continue(());
    /// assert!(codec.decode(&mut partial, b"abcd", &mut on_line).is_ok());
    /// assert!(codec.decode(&mut partial, b"e", &mut on_line).is_err());
    /// ```
    pub fn decode(
        &self,
        partial: &mut PartialLine,
        chunk: &[u8],
        mut on_line: impl FnMut(&[u8]) -> ControlFlow<()>,
    ) -> Result<(), LineTooLong> {
        let mut rest = chunk;

        debug_assert!(partial.preamble().is_none(), "decoding before the preamble");
        if let Some(held) = partial.held_mut() {
            let Some(end) = find_newline(rest) else {
                return self.keep_tail(partial, rest);
            };
            let line_len = held.len() + end;
            let last = if end > 0 {
                rest[end - 1]
            } else {
                *held.last().unwrap_or(&0)
            };
            if content_len(line_len, last) > self.max_line {
                partial.clear();
                return Err(LineTooLong {
                    max_line: self.max_line,
                });
            }
            held.extend_from_slice(&rest[..end]);
            let flow = on_line(strip_cr(held));
            partial.clear();
            if flow.is_break() {
                return Ok(());
            }
            rest = &rest[end + 1..];
        }

        while let Some(end) = find_newline(rest) {
            let line = strip_cr(&rest[..end]);
            if line.len() > self.max_line {
                return Err(LineTooLong {
                    max_line: self.max_line,
                });
            }
            if on_line(line).is_break() {
                return Ok(());
            }
            rest = &rest[end + 1..];
        }
        self.keep_tail(partial, rest)
    }

    /// Appends `tail` (which holds no newline) to the partial line, unless
    /// the line is now certain to be too long.
    fn keep_tail(&self, partial: &mut PartialLine, tail: &[u8]) -> Result<(), LineTooLong> {
        let Some(&last) = tail.last() else {
            return Ok(());
        };
        if self.certainly_too_long(partial.len() + tail.len(), last) {
            partial.clear();
            return Err(LineTooLong {
                max_line: self.max_line,
            });
        }
        partial.push(tail);
        Ok(())
    }

    /// Whether an unfinished line of `len` bytes ending in `last` is too
    /// long whatever comes next. One byte past the maximum may still be the
    /// `\r` of a `\r\n`.
    fn certainly_too_long(&self, len: usize, last: u8) -> bool {
        len > self.max_line.saturating_add(1) || (len > self.max_line && last != b'\r')
    }
}

impl Default for LineCodec {
    /// Lines of at most 1024 bytes, the protocol's default.
    fn default() -> LineCodec {
        LineCodec::new(1024)
    }
}

/// A line longer than the codec's maximum.
///
/// # Examples
///
/// ```
/// use std::ops::ControlFlow;
/// use vigil::protocol::{LineCodec, PartialLine};
///
/// let err = LineCodec::new(2)
///     .decode(&mut PartialLine::default(), b"abc\n", |_| ControlFlow::Continue(()))
///     .unwrap_err();
/// assert_eq!(err.max_line(), 2);
/// assert_eq!(err.to_string(), "line longer than 2 bytes");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong {
    max_line: usize,
}

impl LineTooLong {
    /// The maximum that was exceeded.
    pub fn max_line(&self) -> usize {
        self.max_line
    }
}

impl fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line longer than {} bytes", self.max_line)
    }
}

impl std::error::Error for LineTooLong {}

/// The index of the first `\n` in `bytes`.
fn find_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// A line without the `\r` its sender may have put before the `\n`.
fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The length that counts against the maximum, for a complete line of `len`
/// bytes (before its `\n`) whose last byte is `last`.
fn content_len(len: usize, last: u8) -> usize {
    if len > 0 && last == b'\r' {
        len - 1
    } else {
        len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `chunks` in order; the lines, then the error if any.
    fn decode_all(max_line: usize, chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Option<LineTooLong>) {
        let codec = LineCodec::new(max_line);
        let mut partial = PartialLine::default();
        let mut lines = Vec::new();
        for chunk in chunks {
            let result = codec.decode(&mut partial, chunk, |line| {
                lines.push(line.to_vec());
                ControlFlow::Continue(())
            });
            if let Err(err) = result {
                assert!(partial.is_empty(), "an error leaves no partial line");
                return (lines, Some(err));
            }
        }
        (lines, None)
    }

    fn lines(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let (lines, err) = decode_all(1024, chunks);
        assert_eq!(err, None);
        lines
    }

    fn owned(lines: &[&[u8]]) -> Vec<Vec<u8>> {
        lines.iter().map(|line| line.to_vec()).collect()
    }

    #[test]
    fn whole_lines_in_one_chunk() {
        assert_eq!(
            lines(&[b"PING\nPING 2\nhello\n"]),
            owned(&[b"PING", b"PING 2", b"hello"])
        );
    }

    #[test]
    fn every_split_point_gives_the_same_lines() {
        let input: &[u8] = b"PING\r\nPING a b\n\nQUIT\r\n\r\nx\0y\xff\n";
        let expected = owned(&[b"PING", b"PING a b", b"", b"QUIT", b"", b"x\0y\xff"]);
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let chunks = [&input[..i], &input[i..j], &input[j..]];
                assert_eq!(lines(&chunks), expected, "split at {i} and {j}");
            }
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let input: &[u8] = b"PING 1\r\nPING 2\n";
        let chunks: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(lines(&chunks), owned(&[b"PING 1", b"PING 2"]));
    }

    #[test]
    fn only_a_carriage_return_right_before_the_newline_is_dropped() {
        assert_eq!(
            lines(&[b"a\rb\r\n\r\r\n\r\n"]),
            owned(&[b"a\rb", b"\r", b""])
        );
        assert_eq!(lines(&[b"a\r", b"\n"]), owned(&[b"a"]));
        assert_eq!(lines(&[b"\r", b"\n"]), owned(&[b""]));
    }

    #[test]
    fn empty_lines_are_lines() {
        assert_eq!(lines(&[b"\n\n", b"\n"]), owned(&[b"", b"", b""]));
    }

    #[test]
    fn binary_bytes_pass_through() {
        let all: Vec<u8> = (0..=255u8).filter(|&b| b != b'\n').collect();
        let mut input = all.clone();
        input.push(b'\n');
        assert_eq!(lines(&[&input]), vec![all]);
    }

    #[test]
    fn the_partial_line_is_freed_once_complete() {
        let codec = LineCodec::default();
        let mut partial = PartialLine::default();
        let mut count = 0;
        let mut on_line = |_: &[u8]| {
            count += 1;
            ControlFlow::Continue(())
        };
        codec
            .decode(&mut partial, b"PING\nPI", &mut on_line)
            .unwrap();
        assert_eq!(partial.len(), 2);
        codec
            .decode(&mut partial, b"NG\nPING\n", &mut on_line)
            .unwrap();
        assert!(partial.is_empty());
        assert_eq!(partial, PartialLine::default());
        assert_eq!(count, 3);
    }

    #[test]
    fn a_line_of_exactly_the_maximum_is_accepted() {
        assert_eq!(decode_all(4, &[b"abcd\n"]), (owned(&[b"abcd"]), None));
        assert_eq!(decode_all(4, &[b"abcd\r\n"]), (owned(&[b"abcd"]), None));
        assert_eq!(
            decode_all(4, &[b"ab", b"cd\r", b"\n"]),
            (owned(&[b"abcd"]), None)
        );
        assert_eq!(
            decode_all(4, &[b"abcd\r", b"\n"]),
            (owned(&[b"abcd"]), None)
        );
        assert_eq!(decode_all(0, &[b"\n\r\n"]), (owned(&[b"", b""]), None));
    }

    #[test]
    fn an_overlong_line_with_its_newline_is_refused() {
        let err = Some(LineTooLong { max_line: 4 });
        assert_eq!(
            decode_all(4, &[b"ok\nabcde\nnever\n"]),
            (owned(&[b"ok"]), err)
        );
        assert_eq!(decode_all(4, &[b"ab", b"cde\n"]), (vec![], err));
        assert_eq!(decode_all(4, &[b"abcd", b"e\r\n"]), (vec![], err));
        assert_eq!(decode_all(4, &[b"abcde\r\n"]), (vec![], err));
    }

    #[test]
    fn an_overlong_line_is_refused_before_its_newline() {
        let err = Some(LineTooLong { max_line: 4 });
        assert_eq!(decode_all(4, &[b"abcde"]), (vec![], err));
        assert_eq!(decode_all(4, &[b"PING\nabcde"]), (owned(&[b"PING"]), err));
        assert_eq!(decode_all(4, &[b"abc", b"de"]), (vec![], err));
        let one_by_one: Vec<&[u8]> = b"abcde".chunks(1).collect();
        assert_eq!(decode_all(4, &one_by_one), (vec![], err));
    }

    #[test]
    fn one_byte_past_the_maximum_may_be_the_carriage_return() {
        // "abcd\r" could still end as the valid line "abcd"...
        assert_eq!(decode_all(4, &[b"abcd\r"]), (vec![], None));
        // ...but not once another byte follows the '\r'.
        let err = Some(LineTooLong { max_line: 4 });
        assert_eq!(decode_all(4, &[b"abcd\r", b"x"]), (vec![], err));
        assert_eq!(decode_all(4, &[b"abcd\rx"]), (vec![], err));
    }

    #[test]
    fn a_break_stops_decoding_and_discards_the_rest() {
        let codec = LineCodec::default();
        let mut partial = PartialLine::default();
        let mut seen = Vec::new();
        codec
            .decode(&mut partial, b"a\nQUIT\nb\npartial", |line| {
                seen.push(line.to_vec());
                if line == b"QUIT" {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .unwrap();
        assert_eq!(seen, owned(&[b"a", b"QUIT"]));
        assert!(partial.is_empty());
    }

    #[test]
    fn complete_lines_are_slices_of_the_chunk() {
        let codec = LineCodec::default();
        let mut partial = PartialLine::default();
        let chunk: &[u8] = b"PING 1\nPING 2\n";
        let range = chunk.as_ptr_range();
        codec
            .decode(&mut partial, chunk, |line| {
                assert!(range.contains(&line.as_ptr()), "copied: {line:?}");
                ControlFlow::Continue(())
            })
            .unwrap();
    }
}
