//! Byte offset → line and column, for reporting positions a person can jump to.

/// Line starts of a text, to turn byte offsets into 1-based lines and 1-based character columns.
pub struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        LineIndex { text, starts }
    }

    /// 1-based line and 1-based column counted in characters (what editors show).
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (line + 1, col + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters_not_bytes() {
        let idx = LineIndex::new("a: é\nimage: x\n# 专为 x\n");
        assert_eq!(idx.position(0), (1, 1));
        assert_eq!(idx.position("a: é\n".len()), (2, 1));
        let third = "a: é\nimage: x\n".len();
        assert_eq!(idx.position(third + "# 专为 ".len()), (3, 6));
    }
}
