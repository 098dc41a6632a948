//! Searching every file under a folder for personal data in clear (feature `test-util`): the
//! check the zones' and the end-to-end tests run over their data, work and ferry folders.
//!
//! Files are read as they are on disk: nothing is decompressed or decrypted, so a hit inside a
//! bundle, a sealed file or a database page is a real finding. Names are searched in UTF-8, GBK,
//! UTF-16LE and UTF-16BE (what a database, a Windows tool or a JSON escape might write); ID
//! numbers and phone numbers in ASCII and both UTF-16 orders.

use std::fmt;
use std::path::{Path, PathBuf};

/// What a needle is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PersonalKind {
    /// A person's name.
    Name,
    /// A resident ID number.
    IdNumber,
    /// A phone number.
    Phone,
}

/// One value to look for, in every encoding it is searched in.
#[derive(Clone)]
pub struct Needle {
    /// What it is.
    pub kind: PersonalKind,
    /// The value (kept out of `Debug` and of reports: a report names the kind and a masked form).
    value: String,
    encodings: Vec<(&'static str, Vec<u8>)>,
}

impl fmt::Debug for Needle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Needle({:?}, {})", self.kind, self.masked())
    }
}

impl Needle {
    /// A value to look for. Names are searched in UTF-8, GBK and UTF-16; numbers in ASCII and
    /// UTF-16.
    pub fn new(kind: PersonalKind, value: &str) -> Needle {
        let mut encodings = vec![("utf-8", value.as_bytes().to_vec())];
        if kind == PersonalKind::Name {
            let (gbk, _, unmappable) = encoding_rs::GBK.encode(value);
            if !unmappable {
                encodings.push(("gbk", gbk.into_owned()));
            }
        }
        encodings.push((
            "utf-16le",
            value.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        ));
        encodings.push((
            "utf-16be",
            value.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        ));
        Needle {
            kind,
            value: value.to_owned(),
            encodings,
        }
    }

    /// The value masked, for reports (`张*三`, `370781********1234`, `138****5678`).
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.value.chars().collect();
        let keep = match self.kind {
            PersonalKind::Name => 1,
            PersonalKind::IdNumber | PersonalKind::Phone => 3,
        };
        chars
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i < keep || (self.kind != PersonalKind::Name && i + 4 >= chars.len()) {
                    *c
                } else {
                    '*'
                }
            })
            .collect()
    }
}

/// A needle found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The file.
    pub path: PathBuf,
    /// What was found.
    pub kind: PersonalKind,
    /// The value, masked.
    pub masked: String,
    /// The encoding it was found in.
    pub encoding: &'static str,
    /// Where in the file.
    pub offset: usize,
}

impl fmt::Display for Hit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {:?} {} ({}) at byte {}",
            self.path.display(),
            self.kind,
            self.masked,
            self.encoding,
            self.offset
        )
    }
}

/// Every regular file under `root`, recursively; symbolic links are not followed (a link is
/// reported as a file would be, by its own bytes: none).
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

/// Searches `bytes` for every encoding of every needle; one hit per needle and encoding (the
/// first offset).
pub fn scan_bytes(path: &Path, bytes: &[u8], needles: &[Needle]) -> Vec<Hit> {
    let mut hits = Vec::new();
    for needle in needles {
        for (encoding, pattern) in &needle.encodings {
            if pattern.is_empty() || pattern.len() > bytes.len() {
                continue;
            }
            if let Some(offset) = bytes.windows(pattern.len()).position(|w| w == pattern) {
                hits.push(Hit {
                    path: path.to_path_buf(),
                    kind: needle.kind,
                    masked: needle.masked(),
                    encoding,
                    offset,
                });
            }
        }
    }
    hits
}

/// Searches every file under `root`. A file that cannot be read (it vanished while the scan
/// ran) is skipped.
pub fn scan_tree(root: &Path, needles: &[Needle]) -> Vec<Hit> {
    files_under(root)
        .iter()
        .filter_map(|path| std::fs::read(path).ok().map(|bytes| (path, bytes)))
        .flat_map(|(path, bytes)| scan_bytes(path, &bytes, needles))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_names_in_every_encoding_and_numbers_as_text() {
        let name = Needle::new(PersonalKind::Name, "张小三");
        let id = Needle::new(PersonalKind::IdNumber, "370781199001012345");
        let path = Path::new("f");
        let gbk = encoding_rs::GBK.encode("x张小三y").0.into_owned();
        assert_eq!(gbk.len(), 8, "GBK uses two bytes per character");
        let hits = scan_bytes(path, &gbk, &[name.clone(), id.clone()]);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].encoding, "gbk");
        assert_eq!(hits[0].offset, 1);
        let le: Vec<u8> = "..张小三"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(
            scan_bytes(path, &le, std::slice::from_ref(&name))[0].encoding,
            "utf-16le"
        );
        let be: Vec<u8> = "张小三".encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(
            scan_bytes(path, &be, std::slice::from_ref(&name))[0].encoding,
            "utf-16be"
        );
        let text = "{\"id\":\"370781199001012345\"}";
        let hits = scan_bytes(path, text.as_bytes(), &[name.clone(), id.clone()]);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].kind, PersonalKind::IdNumber);
        assert_eq!(hits[0].masked, "370***********2345");
        assert!(scan_bytes(path, b"nothing here", &[name, id]).is_empty());
    }

    #[test]
    fn walks_every_file_but_follows_no_link() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("a/b"))?;
        std::fs::write(dir.path().join("a/b/deep.db"), "陈磊")?;
        std::fs::write(dir.path().join(".hidden"), "x")?;
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link"))?;
        let files = files_under(dir.path());
        assert_eq!(files.len(), 2, "{files:?}");
        let hits = scan_tree(dir.path(), &[Needle::new(PersonalKind::Name, "陈磊")]);
        assert_eq!(hits.len(), 1);
        assert!(hits[0].path.ends_with("a/b/deep.db"));
        assert_eq!(hits[0].masked, "陈*");
        Ok(())
    }
}
