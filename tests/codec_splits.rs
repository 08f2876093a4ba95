//! `LineCodec` is resumable: however the same bytes are split into chunks,
//! it hands over the same lines and refuses the same overlong line.

use std::ops::ControlFlow;

use proptest::prelude::*;
use vigil::protocol::{LineCodec, PartialLine};

/// The lines decoded from `chunks` in order, and whether decoding stopped
/// at an overlong line (no chunk is fed after the first error, as a
/// connection is closed then).
fn decode(codec: &LineCodec, chunks: &[&[u8]]) -> (Vec<Vec<u8>>, bool) {
    let mut partial = PartialLine::default();
    let mut lines = Vec::new();
    for chunk in chunks {
        let decoded = codec.decode(&mut partial, chunk, |line| {
            lines.push(line.to_vec());
            ControlFlow::Continue(())
        });
        if decoded.is_err() {
            return (lines, true);
        }
    }
    (lines, false)
}

/// Bytes that make lines interesting: newlines, carriage returns, NUL, and
/// a few letters.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => Just(b'\n'),
            2 => Just(b'\r'),
            1 => Just(0u8),
            1 => Just(0xff),
            8 => b'a'..=b'e',
        ],
        0..200,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_split_gives_the_same_lines_and_errors(
        bytes in stream(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        max_line in 0usize..12,
    ) {
        let codec = LineCodec::new(max_line);
        let whole = decode(&codec, &[&bytes]);
        let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for point in points {
            chunks.push(&bytes[start..point]);
            start = point;
        }
        chunks.push(&bytes[start..]);
        prop_assert_eq!(decode(&codec, &chunks), whole);
    }
}
