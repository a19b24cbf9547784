//! `/attach FILE`: an image or a document sent with the next message, read from a file.
//!
//! The file's extension says what it is (`png`, `jpg`/`jpeg`, `gif`, `webp` are images; `pdf`,
//! `csv`, `doc`, `docx`, `xls`, `xlsx`, `html`, `txt`, `md` documents), its bytes go inline as
//! base64, and a document is named after the file in the characters Bedrock takes in a
//! document name (rules file R1.4: letters, digits, `_`, `-`, `()`, `[]`, single spaces; no
//! `.`). A file over Bedrock's limit (3.75 MB for an image, 4.5 MB for a document) is refused
//! here rather than by the service after the message is stored.

use std::path::Path;

use base64::Engine as _;
use verbatim_model::{ContentBlock, DocumentBlock, DocumentSource, ImageBlock, MediaSource};

/// The largest image Bedrock takes (its 5 MB check is of the base64 text).
const IMAGE_LIMIT: u64 = 3_932_160;
/// The largest document Bedrock takes (4.5 MB).
const DOCUMENT_LIMIT: u64 = 4_718_592;
const IMAGE_FORMATS: &[(&str, &str)] =
    &[("png", "png"), ("jpg", "jpeg"), ("jpeg", "jpeg"), ("gif", "gif"), ("webp", "webp")];
const DOCUMENT_FORMATS: &[&str] =
    &["pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md"];

/// Files attached to the next message, in the order given.
#[derive(Debug, Default)]
pub(super) struct Attachments {
    pending: Vec<(String, ContentBlock)>,
}

impl Attachments {
    /// Reads `path` and keeps it for the next message; what was attached, or why not.
    pub(super) fn add(&mut self, path: &str) -> Result<String, String> {
        let path = path.trim();
        if path.is_empty() {
            return Ok(self.describe());
        }
        let block = read(Path::new(path))?;
        if let ContentBlock::Document(document) = &block {
            let taken = self
                .pending
                .iter()
                .any(|(_, b)| matches!(b, ContentBlock::Document(d) if d.name == document.name));
            if taken {
                return Err(format!(
                    "a document named {:?} is already attached (names must differ)",
                    document.name.as_deref().unwrap_or_default()
                ));
            }
        }
        let kind = block.kind_name();
        self.pending.push((path.to_owned(), block));
        Ok(format!("attached {path} ({kind}); it goes with your next message"))
    }

    /// What is attached, for `/attach` without a file.
    pub(super) fn describe(&self) -> String {
        if self.pending.is_empty() {
            return "nothing attached (/attach FILE adds an image or a document)".into();
        }
        let files: Vec<&str> = self.pending.iter().map(|(path, _)| path.as_str()).collect();
        format!("attached to your next message: {}", files.join(", "))
    }

    /// Forgets what was attached; how many there were.
    pub(super) fn clear(&mut self) -> usize {
        std::mem::take(&mut self.pending).len()
    }

    /// The message's blocks: the attachments, then the text (a document needs a text beside
    /// it). The attachments are kept until [`Attachments::sent`].
    pub(super) fn message(&self, text: &str) -> Vec<ContentBlock> {
        let mut blocks: Vec<ContentBlock> =
            self.pending.iter().map(|(_, block)| block.clone()).collect();
        blocks.push(ContentBlock::text(text));
        blocks
    }

    /// The message carrying the attachments was stored: they are not attached again.
    pub(super) fn sent(&mut self) {
        self.pending.clear();
    }
}

/// The block a file makes.
fn read(path: &Path) -> Result<ContentBlock, String> {
    let shown = path.display();
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .ok_or_else(|| format!("{shown}: no extension to tell an image from a document"))?;
    let image = IMAGE_FORMATS.iter().find(|(ext, _)| *ext == extension).map(|(_, f)| *f);
    let document = DOCUMENT_FORMATS.contains(&extension.as_str());
    if image.is_none() && !document {
        return Err(format!(
            "{shown}: .{extension} is neither an image (png, jpeg, gif, webp) nor a document Bedrock takes ({})",
            DOCUMENT_FORMATS.join(", ")
        ));
    }
    let size = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?.len();
    let (limit, what) =
        if image.is_some() { (IMAGE_LIMIT, "an image") } else { (DOCUMENT_LIMIT, "a document") };
    if size > limit {
        return Err(format!(
            "{shown}: {size} bytes; Bedrock takes {what} of at most {limit} bytes"
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
    if bytes.is_empty() {
        return Err(format!("{shown}: the file is empty"));
    }
    let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
    Ok(match image {
        Some(format) => ContentBlock::Image(ImageBlock {
            format: Some(format.to_owned()),
            source: MediaSource::Bytes(data),
            unmapped: Default::default(),
        }),
        None => ContentBlock::Document(DocumentBlock {
            name: Some(document_name(path)),
            format: Some(extension),
            source: DocumentSource::Bytes(data),
            context: None,
            citations: None,
            unmapped: Default::default(),
        }),
    })
}

/// A document name Bedrock takes, from the file's name without its extension: other
/// characters become `-`, runs of whitespace one space, at most 200 characters.
fn document_name(path: &Path) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let mut name = String::new();
    for c in stem.chars() {
        let c = match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '-' | '(' | ')' | '[' | ']' => c,
            c if c.is_whitespace() => ' ',
            _ => '-',
        };
        if !(c == ' ' && name.ends_with(' ')) {
            name.push(c);
        }
    }
    let name: String = name.trim().chars().take(200).collect();
    if name.is_empty() { "document".into() } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_named_in_the_characters_bedrock_takes() {
        assert_eq!(document_name(Path::new("/tmp/Q3 report.final.pdf")), "Q3 report-final");
        assert_eq!(document_name(Path::new("a  b\tc:d.txt")), "a b c-d");
        assert_eq!(document_name(Path::new("notes_(v2) [draft].md")), "notes_(v2) [draft]");
        assert_eq!(document_name(Path::new("日本.md")), "--");
        assert_eq!(document_name(Path::new(".md")), "-md");
    }

    #[test]
    fn files_are_read_by_kind_and_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("cat.JPG");
        std::fs::write(&image, b"\xff\xd8\xff").unwrap();
        let ContentBlock::Image(block) = read(&image).unwrap() else { panic!("an image") };
        assert_eq!(block.format.as_deref(), Some("jpeg"));
        assert_eq!(block.source, MediaSource::Bytes("/9j/".into()));

        let doc = dir.path().join("plan v1.md");
        std::fs::write(&doc, "# Plan").unwrap();
        let ContentBlock::Document(block) = read(&doc).unwrap() else { panic!("a document") };
        assert_eq!((block.name.as_deref(), block.format.as_deref()), (Some("plan v1"), Some("md")));

        let other = dir.path().join("tool.exe");
        std::fs::write(&other, b"MZ").unwrap();
        assert!(read(&other).unwrap_err().contains("neither an image"));
        let big = dir.path().join("big.png");
        std::fs::File::create(&big).unwrap().set_len(IMAGE_LIMIT + 1).unwrap();
        assert!(read(&big).unwrap_err().contains("at most 3932160 bytes"));
        assert!(read(&dir.path().join("missing.pdf")).unwrap_err().contains("missing.pdf"));

        let mut attached = Attachments::default();
        attached.add(doc.to_str().unwrap()).unwrap();
        assert!(attached.add(doc.to_str().unwrap()).unwrap_err().contains("already attached"));
        attached.add(image.to_str().unwrap()).unwrap();
        let blocks = attached.message("what is this?");
        let kinds: Vec<&str> = blocks.iter().map(ContentBlock::kind_name).collect();
        assert_eq!(kinds, ["document", "image", "text"]);
        attached.sent();
        assert!(attached.describe().starts_with("nothing attached"));
    }
}
