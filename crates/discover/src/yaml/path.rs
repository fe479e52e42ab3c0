//! A YAML path being walked (`spec.template.spec.containers[api].image`), kept as a stack and
//! rendered only when a finding needs it.

use std::fmt;

#[derive(Debug, Clone, Default)]
pub(crate) struct Path {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone)]
enum Segment {
    Key(String),
    /// A sequence item, shown by its `name` when it has one (`containers[api]`).
    Item(usize, Option<String>),
}

impl Path {
    pub fn new() -> Self {
        Path::default()
    }

    pub fn key(&self, key: &str) -> Path {
        let mut p = self.clone();
        p.segments.push(Segment::Key(key.to_string()));
        p
    }

    pub fn item(&self, index: usize, name: Option<&str>) -> Path {
        let mut p = self.clone();
        p.segments
            .push(Segment::Item(index, name.map(str::to_string)));
        p
    }

    pub fn push_key(&mut self, key: &str) {
        self.segments.push(Segment::Key(key.to_string()));
    }

    pub fn push_item(&mut self, index: usize, name: Option<&str>) {
        self.segments
            .push(Segment::Item(index, name.map(str::to_string)));
    }

    pub fn pop(&mut self) {
        self.segments.pop();
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::Key(k) if k.contains(['.', ' ', '[', ']']) => write!(f, "[\"{k}\"]")?,
                Segment::Key(k) if i == 0 => f.write_str(k)?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Item(_, Some(name)) => write!(f, "[{name}]")?,
                Segment::Item(i, None) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

impl Path {
    /// Whether the path is exactly these keys (no sequence items).
    pub fn is_key_path(&self, keys: &[&str]) -> bool {
        self.segments.len() == keys.len()
            && self
                .segments
                .iter()
                .zip(keys)
                .all(|(s, k)| matches!(s, Segment::Key(x) if x == k))
    }

    /// The last key, if the path ends in one.
    pub fn last_key(&self) -> Option<&str> {
        match self.segments.last() {
            Some(Segment::Key(k)) => Some(k),
            _ => None,
        }
    }
}
