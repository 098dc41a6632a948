//! The BagIt (RFC 8493) text files of a disc, and the one extra tag file the ferry adds.
//!
//! Written and read here, by hand: they are a few lines of text each, and no maintained Rust
//! crate writes and strictly validates BagIt (the Library of Congress `bagit.py` is the
//! reference tool, and the tests run it on every bag the ferry writes).
//!
//! Layout of one disc (`docs/offline-media.md` is the specification):
//!
//! ```text
//! bagit.txt                 BagIt-Version: 1.0, UTF-8
//! bag-info.txt              Payload-Oxum, Bagging-Date, Bag-Group-Identifier, Bag-Count, OW-…
//! manifest-sha256.txt       <hex>  data/…   one line per payload file
//! manifest-sha512.txt
//! manifest-blake3.txt
//! ow-contents.txt           what each payload file is: a bundle, or part k of n of one
//! tagmanifest-sha256.txt    SHA-256 of the five tag files above
//! ow-media-manifest.txt     signed by the sending zone over the tag manifest's digest
//! data/bundles/<bundle file name>
//! data/parts/<bundle file name>.part-<k>-of-<n>
//! ```

use std::fmt::Write as _;

/// `bagit.txt`, exactly.
pub const BAGIT_TXT: &str = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n";
/// The bag declaration file.
pub const BAGIT_NAME: &str = "bagit.txt";
/// The bag metadata file.
pub const BAG_INFO_NAME: &str = "bag-info.txt";
/// The ferry's listing of what each payload file is.
pub const CONTENTS_NAME: &str = "ow-contents.txt";
/// The signed media manifest.
pub const MEDIA_MANIFEST_NAME: &str = "ow-media-manifest.txt";
/// The tag manifest.
pub const TAGMANIFEST_NAME: &str = "tagmanifest-sha256.txt";
/// Payload manifests, by algorithm.
pub const MANIFEST_SHA256: &str = "manifest-sha256.txt";
/// See [`MANIFEST_SHA256`].
pub const MANIFEST_SHA512: &str = "manifest-sha512.txt";
/// See [`MANIFEST_SHA256`].
pub const MANIFEST_BLAKE3: &str = "manifest-blake3.txt";
/// Tag files the tag manifest must list, in the order it lists them.
pub const TAG_FILES: [&str; 6] = [
    BAGIT_NAME,
    BAG_INFO_NAME,
    MANIFEST_SHA256,
    MANIFEST_SHA512,
    MANIFEST_BLAKE3,
    CONTENTS_NAME,
];
/// Whole bundles live here.
pub const BUNDLES_DIR: &str = "data/bundles";
/// Parts of split bundles live here.
pub const PARTS_DIR: &str = "data/parts";

/// The file name of part `index` of `count` of the bundle file `name` (under [`PARTS_DIR`]).
pub fn part_file_name(name: &str, index: u32, count: u32) -> String {
    format!("{name}.part-{index}-of-{count}")
}

/// First line of `ow-contents.txt`.
const CONTENTS_HEADER: &str = "ow-contents v1";

/// Why a path named in a bag is refused: it could reach outside the bag.
pub fn check_bag_path(path: &str) -> Result<(), String> {
    let problem = if path.is_empty() {
        Some("is empty")
    } else if path.starts_with('/') {
        Some("is absolute")
    } else if path.contains('\\') {
        Some("contains a backslash")
    } else if path.len() >= 2 && path.as_bytes()[1] == b':' {
        Some("starts with a drive letter")
    } else if path.starts_with('~') {
        Some("starts with `~` (a home folder)")
    } else if path.chars().any(char::is_control) {
        Some("contains control characters")
    } else if path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        Some("has an empty, `.` or `..` component")
    } else if !path.starts_with("data/") {
        Some("is not under data/")
    } else if path.split('/').any(|part| part.starts_with('~')) {
        Some("has a component starting with `~`")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(format!(
            "the bag names the path {path:?}, which {problem}; a disc may only name files \
             inside its own data/ folder"
        )),
        None => Ok(()),
    }
}

/// `Payload-Oxum`: `<total bytes>.<file count>`.
pub fn payload_oxum(bytes: u64, files: usize) -> String {
    format!("{bytes}.{files}")
}

/// The metadata of `bag-info.txt` the ferry writes and checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BagInfo {
    /// `Source-Organization`.
    pub source: String,
    /// `Bagging-Date` (YYYY-MM-DD).
    pub bagging_date: String,
    /// `Payload-Oxum`.
    pub payload_oxum: String,
    /// `Bag-Group-Identifier`: the set id.
    pub set_id: String,
    /// `Bag-Count`: disc `k` …
    pub disc_index: u32,
    /// … of `n`.
    pub disc_count: u32,
    /// `External-Identifier`: the disc id.
    pub disc_id: String,
    /// `OW-Channel`.
    pub channel: String,
    /// `OW-Sender-Zone`.
    pub sender: String,
    /// `OW-Receiver-Zone`.
    pub receiver: String,
    /// `OW-Sequence-Range` of this disc: `<first>-<last>`.
    pub sequences: (u64, u64),
    /// `OW-Set-Sequence-Range`.
    pub set_sequences: (u64, u64),
}

impl BagInfo {
    /// The text of `bag-info.txt`.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(text, "Source-Organization: {}", self.source);
        let _ = writeln!(text, "Bagging-Date: {}", self.bagging_date);
        let _ = writeln!(
            text,
            "Bag-Software-Agent: ow-ferry {}",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(text, "Payload-Oxum: {}", self.payload_oxum);
        let _ = writeln!(text, "Bag-Group-Identifier: {}", self.set_id);
        let _ = writeln!(
            text,
            "Bag-Count: {} of {}",
            self.disc_index, self.disc_count
        );
        let _ = writeln!(text, "External-Identifier: {}", self.disc_id);
        let _ = writeln!(text, "OW-Channel: {}", self.channel);
        let _ = writeln!(text, "OW-Sender-Zone: {}", self.sender);
        let _ = writeln!(text, "OW-Receiver-Zone: {}", self.receiver);
        let _ = writeln!(
            text,
            "OW-Sequence-Range: {}-{}",
            self.sequences.0, self.sequences.1
        );
        let _ = writeln!(
            text,
            "OW-Set-Sequence-Range: {}-{}",
            self.set_sequences.0, self.set_sequences.1
        );
        text
    }

    /// Parses the labels the ferry writes (others are ignored; each of ours must appear once).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut values: std::collections::HashMap<&str, &str> = Default::default();
        for line in text.lines() {
            let Some((label, value)) = line.split_once(':') else {
                return Err(format!("bag-info.txt has a line without a label: {line:?}"));
            };
            let label = label.trim();
            if values.insert(label, value.trim()).is_some() && label.starts_with("OW-") {
                return Err(format!("bag-info.txt repeats {label}"));
            }
        }
        let get = |label: &str| {
            values
                .get(label)
                .map(|v| (*v).to_owned())
                .ok_or_else(|| format!("bag-info.txt has no {label}"))
        };
        let range = |label: &str| -> Result<(u64, u64), String> {
            let v = get(label)?;
            let (a, b) = v
                .split_once('-')
                .ok_or_else(|| format!("bag-info.txt {label} is not <first>-<last>"))?;
            Ok((
                a.parse().map_err(|_| format!("bad {label}"))?,
                b.parse().map_err(|_| format!("bad {label}"))?,
            ))
        };
        let count = get("Bag-Count")?;
        let (k, n) = count
            .split_once(" of ")
            .ok_or_else(|| "bag-info.txt Bag-Count is not `k of n`".to_owned())?;
        Ok(Self {
            source: get("Source-Organization")?,
            bagging_date: get("Bagging-Date")?,
            payload_oxum: get("Payload-Oxum")?,
            set_id: get("Bag-Group-Identifier")?,
            disc_index: k.parse().map_err(|_| "bad Bag-Count".to_owned())?,
            disc_count: n.parse().map_err(|_| "bad Bag-Count".to_owned())?,
            disc_id: get("External-Identifier")?,
            channel: get("OW-Channel")?,
            sender: get("OW-Sender-Zone")?,
            receiver: get("OW-Receiver-Zone")?,
            sequences: range("OW-Sequence-Range")?,
            set_sequences: range("OW-Set-Sequence-Range")?,
        })
    }
}

/// A manifest's text: `<hex digest>  <path>` per line.
pub fn encode_manifest(lines: &[(String, String)]) -> String {
    let mut text = String::new();
    for (digest, path) in lines {
        let _ = writeln!(text, "{digest}  {path}");
    }
    text
}

/// Parses a manifest into `(digest, path)` lines; `hex_len` is the digest's length in hex.
/// Paths are checked with [`check_bag_path`] unless `tag` (tag manifests name tag files).
pub fn parse_manifest(
    name: &str,
    text: &str,
    hex_len: usize,
    tag: bool,
) -> Result<Vec<(String, String)>, ManifestProblem> {
    let mut lines = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for line in text.lines() {
        let Some((digest, path)) = line.split_once(char::is_whitespace) else {
            return Err(ManifestProblem::Malformed(format!(
                "{name} has a line that is not `<digest> <path>`"
            )));
        };
        let path = path.trim_start();
        if digest.len() != hex_len
            || !digest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(ManifestProblem::Malformed(format!(
                "{name} has a digest that is not {hex_len} lower-case hex digits"
            )));
        }
        if tag {
            if !TAG_FILES.contains(&path) {
                return Err(ManifestProblem::Path(format!(
                    "{name} names {path:?}, which is not one of the bag's tag files"
                )));
            }
        } else {
            check_bag_path(path).map_err(ManifestProblem::Path)?;
        }
        if !seen.insert(path.to_owned()) {
            return Err(ManifestProblem::Malformed(format!(
                "{name} lists {path:?} twice"
            )));
        }
        lines.push((digest.to_owned(), path.to_owned()));
    }
    Ok(lines)
}

/// Why a manifest was refused.
#[derive(Debug)]
pub enum ManifestProblem {
    /// It does not parse.
    Malformed(String),
    /// It names a path outside the bag.
    Path(String),
}

/// What one payload file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A whole bundle.
    Bundle {
        /// Path in the bag.
        path: String,
        /// Size in bytes.
        bytes: u64,
        /// The bundle's id.
        bundle_id: String,
        /// Its sequence.
        sequence: u64,
    },
    /// Part `index` of `count` of a bundle too large for one disc.
    Part {
        /// Path in the bag.
        path: String,
        /// Size of this part in bytes.
        bytes: u64,
        /// The bundle's id.
        bundle_id: String,
        /// Its sequence.
        sequence: u64,
        /// 1-based part number.
        index: u32,
        /// Number of parts.
        count: u32,
        /// Offset of this part in the bundle.
        offset: u64,
        /// The whole bundle's size.
        bundle_bytes: u64,
        /// BLAKE3 (hex) of the whole bundle.
        bundle_blake3: String,
        /// The bundle's file name once reassembled.
        file_name: String,
    },
}

impl Content {
    /// Path in the bag.
    pub fn path(&self) -> &str {
        match self {
            Self::Bundle { path, .. } | Self::Part { path, .. } => path,
        }
    }

    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        match self {
            Self::Bundle { bytes, .. } | Self::Part { bytes, .. } => *bytes,
        }
    }

    /// The bundle id.
    pub fn bundle_id(&self) -> &str {
        match self {
            Self::Bundle { bundle_id, .. } | Self::Part { bundle_id, .. } => bundle_id,
        }
    }

    /// The sequence.
    pub fn sequence(&self) -> u64 {
        match self {
            Self::Bundle { sequence, .. } | Self::Part { sequence, .. } => *sequence,
        }
    }
}

/// The text of `ow-contents.txt`.
pub fn encode_contents(contents: &[Content]) -> String {
    let mut text = format!("{CONTENTS_HEADER}\n");
    for c in contents {
        match c {
            Content::Bundle {
                path,
                bytes,
                bundle_id,
                sequence,
            } => {
                let _ = writeln!(text, "bundle {path} {bytes} {bundle_id} {sequence}");
            }
            Content::Part {
                path,
                bytes,
                bundle_id,
                sequence,
                index,
                count,
                offset,
                bundle_bytes,
                bundle_blake3,
                file_name,
            } => {
                let _ = writeln!(
                    text,
                    "part {path} {bytes} {bundle_id} {sequence} {index} {count} {offset} \
                     {bundle_bytes} {bundle_blake3} {file_name}"
                );
            }
        }
    }
    text
}

/// Parses `ow-contents.txt`.
pub fn parse_contents(text: &str) -> Result<Vec<Content>, String> {
    let mut lines = text.lines();
    if lines.next() != Some(CONTENTS_HEADER) {
        return Err(format!(
            "{CONTENTS_NAME} does not start with `{CONTENTS_HEADER}`"
        ));
    }
    let bad = |line: &str| format!("{CONTENTS_NAME} has a malformed line: {line:?}");
    let mut contents = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split(' ').collect();
        let num = |i: usize| -> Result<u64, String> {
            fields
                .get(i)
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| bad(line))
        };
        let text_at = |i: usize| -> Result<String, String> {
            fields
                .get(i)
                .filter(|f| !f.is_empty())
                .map(|f| (*f).to_owned())
                .ok_or_else(|| bad(line))
        };
        let content = match (fields.first().copied(), fields.len()) {
            (Some("bundle"), 5) => Content::Bundle {
                path: text_at(1)?,
                bytes: num(2)?,
                bundle_id: text_at(3)?,
                sequence: num(4)?,
            },
            (Some("part"), 11) => Content::Part {
                path: text_at(1)?,
                bytes: num(2)?,
                bundle_id: text_at(3)?,
                sequence: num(4)?,
                index: u32::try_from(num(5)?).map_err(|_| bad(line))?,
                count: u32::try_from(num(6)?).map_err(|_| bad(line))?,
                offset: num(7)?,
                bundle_bytes: num(8)?,
                bundle_blake3: text_at(9)?,
                file_name: text_at(10)?,
            },
            _ => return Err(bad(line)),
        };
        check_bag_path(content.path())?;
        contents.push(content);
    }
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_tricks_are_refused() {
        for path in [
            "../etc/passwd",
            "data/../../x",
            "/data/x",
            "C:/data/x",
            "data\\x",
            "~/x",
            "data/~root/x",
            "data//x",
            "data/./x",
            "",
            "elsewhere/x",
            "data/x\u{7}",
        ] {
            assert!(check_bag_path(path).is_err(), "{path:?} accepted");
        }
        assert!(check_bag_path("data/bundles/a.owb").is_ok());
    }

    #[test]
    fn bag_info_and_contents_round_trip() {
        let info = BagInfo {
            source: "OneWindow intranet zone".into(),
            bagging_date: "2026-03-01".into(),
            payload_oxum: payload_oxum(10, 2),
            set_id: "s".into(),
            disc_index: 2,
            disc_count: 3,
            disc_id: "d".into(),
            channel: "intranet-to-extranet".into(),
            sender: "intranet".into(),
            receiver: "extranet".into(),
            sequences: (4, 9),
            set_sequences: (1, 12),
        };
        assert_eq!(BagInfo::parse(&info.encode()).unwrap(), info);
        let contents = vec![
            Content::Bundle {
                path: "data/bundles/a.owb".into(),
                bytes: 5,
                bundle_id: "a".into(),
                sequence: 4,
            },
            Content::Part {
                path: "data/parts/b.owb.part-1-of-2".into(),
                bytes: 5,
                bundle_id: "b".into(),
                sequence: 5,
                index: 1,
                count: 2,
                offset: 0,
                bundle_bytes: 9,
                bundle_blake3: "ff".into(),
                file_name: "b.owb".into(),
            },
        ];
        assert_eq!(
            parse_contents(&encode_contents(&contents)).unwrap(),
            contents
        );
        assert!(parse_contents("ow-contents v1\nbundle ../x 1 a 1\n").is_err());
    }

    #[test]
    fn manifests_parse_strictly() {
        let hex = "a".repeat(64);
        let ok = format!("{hex}  data/bundles/a.owb\n");
        assert_eq!(
            parse_manifest("m", &ok, 64, false).unwrap()[0].1,
            "data/bundles/a.owb"
        );
        assert!(matches!(
            parse_manifest("m", &format!("{hex}  data/../x\n"), 64, false),
            Err(ManifestProblem::Path(_))
        ));
        assert!(matches!(
            parse_manifest("m", "abc  data/x\n", 64, false),
            Err(ManifestProblem::Malformed(_))
        ));
        assert!(matches!(
            parse_manifest("m", &format!("{ok}{ok}"), 64, false),
            Err(ManifestProblem::Malformed(_))
        ));
    }
}
