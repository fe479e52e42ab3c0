//! Mapping byte offsets in an embedded text (a YAML block scalar, a Groovy string) back to byte
//! offsets in the file it came from, so findings inside embedded documents point at the real bytes.

use std::ops::Range;

/// Piecewise-linear map from offsets in an embedded text to offsets in the outer file.
///
/// Each segment says "from inner offset `inner` on, bytes are copied verbatim from outer offset
/// `outer`". A literal block scalar gives one segment per line (its indentation is dropped); a
/// Groovy `'''` string gives one segment for the whole text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetMap {
    segments: Vec<(usize, usize)>,
    /// False when the embedded text is not a verbatim copy of file bytes (escapes, folding):
    /// positions are then approximate and must not be edited in place.
    exact: bool,
}

impl OffsetMap {
    /// The map for a file's own text.
    pub fn identity() -> Self {
        OffsetMap {
            segments: vec![(0, 0)],
            exact: true,
        }
    }

    /// Text copied verbatim from `outer_start` on (a quoted string without escapes).
    pub fn shifted(outer_start: usize) -> Self {
        OffsetMap {
            segments: vec![(0, outer_start)],
            exact: true,
        }
    }

    /// Build from segments sorted by inner offset; `exact` says whether the copy is verbatim.
    pub fn from_segments(segments: Vec<(usize, usize)>, exact: bool) -> Self {
        debug_assert!(segments.windows(2).all(|w| w[0].0 <= w[1].0));
        let segments = if segments.is_empty() {
            vec![(0, 0)]
        } else {
            segments
        };
        OffsetMap { segments, exact }
    }

    pub fn is_exact(&self) -> bool {
        self.exact
    }

    pub fn map(&self, inner: usize) -> usize {
        let i = self
            .segments
            .partition_point(|&(s, _)| s <= inner)
            .saturating_sub(1);
        let (s, o) = self.segments[i];
        o + inner.saturating_sub(s)
    }

    pub fn map_range(&self, r: Range<usize>) -> Range<usize> {
        let start = self.map(r.start);
        // The end is mapped from its last byte so a range ending at a line break stays on its line.
        let end = if r.end > r.start {
            self.map(r.end - 1) + 1
        } else {
            start
        };
        start..end
    }

    /// The map of a text embedded in this one: `inner` maps offsets of the nested text to offsets
    /// of this text; the result maps them straight to the file.
    pub fn compose(&self, inner: &OffsetMap) -> OffsetMap {
        OffsetMap {
            segments: inner
                .segments
                .iter()
                .map(|&(s, o)| (s, self.map(o)))
                .collect(),
            exact: self.exact && inner.exact,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_map_and_compose() {
        // "ab\ncd" embedded as two lines indented by 4 starting at outer 10 and 17.
        let m = OffsetMap::from_segments(vec![(0, 10), (3, 17)], true);
        assert_eq!(m.map(1), 11);
        assert_eq!(m.map(3), 17);
        assert_eq!(m.map_range(3..5), 17..19);
        let nested = m.compose(&OffsetMap::shifted(3));
        assert_eq!(nested.map(1), 18);
    }
}
