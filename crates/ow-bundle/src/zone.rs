//! Network zones and the directed channels between them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One of the three network zones of OneWindow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Zone {
    /// Citizens, banks, developers: intake and portal.
    Internet,
    /// Registrars and departments: review, register, certificates.
    Extranet,
    /// Surveyors and cadastral reviewers.
    Intranet,
}

impl Zone {
    /// All zones, in a fixed order.
    pub const ALL: [Zone; 3] = [Zone::Internet, Zone::Extranet, Zone::Intranet];

    /// The lowercase name used in headers, channel names and trust files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Zone::Internet => "internet",
            Zone::Extranet => "extranet",
            Zone::Intranet => "intranet",
        }
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Zone {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "internet" => Ok(Zone::Internet),
            "extranet" => Ok(Zone::Extranet),
            "intranet" => Ok(Zone::Intranet),
            other => Err(format!(
                "unknown zone {other:?}: expected one of internet, extranet, intranet"
            )),
        }
    }
}

/// A directed channel between two different zones, named like `internet-to-extranet`.
///
/// Parsing (`FromStr`, serde) and [`Channel::new`] refuse `from == to`; a value built with a
/// struct literal is checked where it matters (the builder and the header checks reject it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Channel {
    /// The sending zone.
    pub from: Zone,
    /// The receiving zone.
    pub to: Zone,
}

impl Channel {
    /// The channel from `from` to `to`; `None` when both are the same zone.
    pub const fn new(from: Zone, to: Zone) -> Option<Self> {
        if from as u8 == to as u8 {
            None
        } else {
            Some(Self { from, to })
        }
    }

    /// Whether the channel joins two different zones.
    pub const fn is_valid(self) -> bool {
        self.from as u8 != self.to as u8
    }

    /// The channel in the opposite direction.
    pub const fn reverse(self) -> Self {
        Self {
            from: self.to,
            to: self.from,
        }
    }

    /// The canonical name, e.g. `internet-to-extranet`.
    pub fn name(self) -> String {
        format!("{}-to-{}", self.from, self.to)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-to-{}", self.from, self.to)
    }
}

impl FromStr for Channel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((from, to)) = s.split_once("-to-") else {
            return Err(format!(
                "invalid channel name {s:?}: expected FROM-to-TO, e.g. internet-to-extranet"
            ));
        };
        let from: Zone = from
            .parse()
            .map_err(|e| format!("invalid channel name {s:?}: {e}"))?;
        let to: Zone = to
            .parse()
            .map_err(|e| format!("invalid channel name {s:?}: {e}"))?;
        Channel::new(from, to).ok_or_else(|| {
            format!("invalid channel name {s:?}: a channel must join two different zones")
        })
    }
}

impl Serialize for Channel {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Channel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_text_round_trip() {
        for z in Zone::ALL {
            assert_eq!(z.to_string().parse::<Zone>().unwrap(), z);
            assert_eq!(
                serde_json::to_string(&z).unwrap(),
                format!("\"{}\"", z.as_str())
            );
        }
        assert!("Internet".parse::<Zone>().is_err());
    }

    #[test]
    fn channel_names() {
        let c: Channel = "internet-to-extranet".parse().unwrap();
        assert_eq!(c.from, Zone::Internet);
        assert_eq!(c.to, Zone::Extranet);
        assert!(c.is_valid());
        assert_eq!(c.to_string(), "internet-to-extranet");
        assert_eq!(c.reverse().name(), "extranet-to-internet");
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            "\"internet-to-extranet\""
        );
        assert_eq!(
            serde_json::from_str::<Channel>("\"extranet-to-intranet\"").unwrap(),
            Channel::new(Zone::Extranet, Zone::Intranet).unwrap()
        );
        for bad in [
            "internet-to-internet",
            "internet",
            "internet-extranet",
            "INTERNET-to-extranet",
            "internet-to-extranet-to-intranet",
            "",
        ] {
            assert!(bad.parse::<Channel>().is_err(), "{bad}");
        }
        assert!(Channel::new(Zone::Intranet, Zone::Intranet).is_none());
        let same = Channel {
            from: Zone::Intranet,
            to: Zone::Intranet,
        };
        assert!(!same.is_valid());
    }
}
