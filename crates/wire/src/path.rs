//! JSON paths such as `messages[3].content[0].toolUse`.

use std::fmt;

/// One step of a [`JsonPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// Where in a JSON document something is, displayed as `messages[3].content[0].toolUse`
/// (`$` for the document itself, `$[2].content` inside a top-level array).
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct JsonPath(Vec<Segment>);

impl fmt::Debug for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonPath({self})")
    }
}

impl JsonPath {
    /// The document itself.
    pub fn root() -> JsonPath {
        JsonPath(Vec::new())
    }

    /// The steps from the root.
    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    /// This path extended by an object key.
    pub fn key(mut self, key: impl Into<String>) -> JsonPath {
        self.0.push(Segment::Key(key.into()));
        self
    }

    /// This path extended by an array index.
    pub fn index(mut self, index: usize) -> JsonPath {
        self.0.push(Segment::Index(index));
        self
    }

    /// This path followed by `other`.
    pub fn join(mut self, other: &JsonPath) -> JsonPath {
        self.0.extend(other.0.iter().cloned());
        self
    }

    /// The path in the dotted form Bedrock's messages use: `messages.3.content.0`.
    pub fn dotted(&self) -> String {
        let mut out = String::new();
        for segment in &self.0 {
            if !out.is_empty() {
                out.push('.');
            }
            match segment {
                Segment::Key(key) => out.push_str(key),
                Segment::Index(index) => out.push_str(&index.to_string()),
            }
        }
        out
    }

    /// Reads a path in the form [`Display`](fmt::Display) writes (`messages[3].content[0]`,
    /// `$` for the root). Keys must not contain `.` or `[`.
    pub fn parse(text: &str) -> Option<JsonPath> {
        let mut segments = Vec::new();
        let rest = text.strip_prefix('$').unwrap_or(text);
        for part in rest.split('.') {
            let (key, mut indexes) = match part.find('[') {
                Some(at) => (&part[..at], &part[at..]),
                None => (part, ""),
            };
            if !key.is_empty() {
                segments.push(Segment::Key(key.to_owned()));
            }
            while let Some(inner) = indexes.strip_prefix('[') {
                let close = inner.find(']')?;
                segments.push(Segment::Index(inner[..close].parse().ok()?));
                indexes = &inner[close + 1..];
            }
            if !indexes.is_empty() {
                return None;
            }
        }
        Some(JsonPath(segments))
    }
}

impl serde::Serialize for JsonPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for JsonPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<JsonPath, D::Error> {
        let text = String::deserialize(deserializer)?;
        JsonPath::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not a JSON path: `{text}`")))
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("$");
        }
        if let Some(Segment::Index(_)) = self.0.first() {
            f.write_str("$")?;
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// A position while walking a document: a borrowed chain of steps that becomes a [`JsonPath`]
/// only when an error needs one, so walking allocates nothing.
#[derive(Clone, Copy)]
pub(crate) struct At<'a> {
    parent: Option<&'a At<'a>>,
    step: Step<'a>,
}

#[derive(Clone, Copy)]
enum Step<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

impl<'a> At<'a> {
    pub(crate) const ROOT: At<'static> = At { parent: None, step: Step::Root };

    pub(crate) fn key(&'a self, key: &'a str) -> At<'a> {
        At { parent: Some(self), step: Step::Key(key) }
    }

    pub(crate) fn index(&'a self, index: usize) -> At<'a> {
        At { parent: Some(self), step: Step::Index(index) }
    }

    pub(crate) fn path(&self) -> JsonPath {
        let mut steps = Vec::new();
        let mut at = Some(self);
        while let Some(current) = at {
            match current.step {
                Step::Root => {}
                Step::Key(key) => steps.push(Segment::Key(key.to_owned())),
                Step::Index(index) => steps.push(Segment::Index(index)),
            }
            at = current.parent;
        }
        steps.reverse();
        JsonPath(steps)
    }
}
