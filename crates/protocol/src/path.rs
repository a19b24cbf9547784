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
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct JsonPath(Vec<Segment>);

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
