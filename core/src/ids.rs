//! Newtype identifiers. Every key that crosses a module border is one of these,
//! validated once at the edge and then trusted.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct IdError {
    /// Which kind of identifier was being parsed.
    pub kind: &'static str,
    /// What was wrong with it.
    pub reason: &'static str,
}

const MAX_NAME_ID_LEN: usize = 64;

fn check_name_id(kind: &'static str, s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError {
            kind,
            reason: "empty",
        });
    }
    if s.len() > MAX_NAME_ID_LEN {
        return Err(IdError {
            kind,
            reason: "longer than 64 characters",
        });
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(IdError {
            kind,
            reason: "only ASCII letters, digits, '-', '_' and '.' are allowed",
        });
    }
    Ok(())
}

macro_rules! name_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                check_name_id($kind, s)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

name_id!(
    /// A user of the system (grid worker, dispatcher, handler, admin), as named in the directory.
    UserId,
    "user id"
);
name_id!(
    /// A department that cases are dispatched to.
    DeptId,
    "department id"
);
name_id!(
    /// A category or subcategory code of the case taxonomy, e.g. `safety` or `safety.fire_exit`.
    CategoryCode,
    "category code"
);

/// The level of a node in the region tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionLevel {
    /// 网格: 100–300 households, one grid worker.
    Grid,
    /// 社区 / 村.
    Community,
    /// 街道 / 镇.
    Town,
    /// 区 / 县.
    District,
    /// 市 (地级市): the top of a directory that spans several districts. Declared
    /// last, so the order of levels is the order up the tree.
    City,
}

impl RegionLevel {
    /// The number of digits of a region code at this level.
    pub fn code_len(self) -> usize {
        match self {
            RegionLevel::City => 4,
            RegionLevel::District => 6,
            RegionLevel::Town => 9,
            RegionLevel::Community => 12,
            RegionLevel::Grid => 15,
        }
    }

    /// The level one step up the tree, if any.
    pub fn parent(self) -> Option<RegionLevel> {
        match self {
            RegionLevel::Grid => Some(RegionLevel::Community),
            RegionLevel::Community => Some(RegionLevel::Town),
            RegionLevel::Town => Some(RegionLevel::District),
            RegionLevel::District => Some(RegionLevel::City),
            RegionLevel::City => None,
        }
    }

    /// Stable lowercase name, as stored in the index tables.
    pub fn as_str(self) -> &'static str {
        match self {
            RegionLevel::Grid => "grid",
            RegionLevel::Community => "community",
            RegionLevel::Town => "town",
            RegionLevel::District => "district",
            RegionLevel::City => "city",
        }
    }
}

impl FromStr for RegionLevel {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        match s {
            "grid" => Ok(RegionLevel::Grid),
            "community" => Ok(RegionLevel::Community),
            "town" => Ok(RegionLevel::Town),
            "district" => Ok(RegionLevel::District),
            "city" => Ok(RegionLevel::City),
            _ => Err(IdError {
                kind: "region level",
                reason: "expected grid, community, town, district or city",
            }),
        }
    }
}

/// A code in the region tree: 4 digits for a city, +2 for a district, +3 for a
/// town, +3 for a community, +3 for a grid (the national administrative division
/// codes, 行政区划代码, extended by three digits per level below the town). A region's subtree is exactly the codes it prefixes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegionCode(String);

impl RegionCode {
    /// The code as a string of digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The level this code denotes, from its length.
    pub fn level(&self) -> RegionLevel {
        match self.0.len() {
            4 => RegionLevel::City,
            6 => RegionLevel::District,
            9 => RegionLevel::Town,
            12 => RegionLevel::Community,
            _ => RegionLevel::Grid,
        }
    }

    /// Whether `other` lies in this region's subtree (a region contains itself).
    pub fn contains(&self, other: &RegionCode) -> bool {
        other.0.starts_with(&self.0)
    }

    /// The enclosing region at `level`, if this code is at or below it.
    pub fn ancestor(&self, level: RegionLevel) -> Option<RegionCode> {
        let len = level.code_len();
        (self.0.len() >= len).then(|| RegionCode(self.0[..len].to_owned()))
    }
}

impl FromStr for RegionCode {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let kind = "region code";
        if !matches!(s.len(), 4 | 6 | 9 | 12 | 15) {
            return Err(IdError {
                kind,
                reason: "must have 4, 6, 9, 12 or 15 digits",
            });
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdError {
                kind,
                reason: "must contain only digits",
            });
        }
        Ok(RegionCode(s.to_owned()))
    }
}

impl fmt::Display for RegionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for RegionCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RegionCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A device: one phone (or one server) with its own SQLite file. Its UUID bytes are
/// the Automerge actor id of every change it makes, so a server can tell whose
/// change is whose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(Uuid);

impl DeviceId {
    /// A fresh random device id.
    pub fn random() -> Self {
        DeviceId(Uuid::new_v4())
    }

    /// The Automerge actor id for changes made on this device.
    pub fn actor(&self) -> automerge::ActorId {
        automerge::ActorId::from(self.0.as_bytes())
    }

    /// The device an Automerge actor id names, if it is one (16 bytes).
    pub fn from_actor(actor: &automerge::ActorId) -> Option<DeviceId> {
        uuid::Uuid::from_slice(actor.to_bytes()).ok().map(DeviceId)
    }
}

impl FromStr for DeviceId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Uuid::parse_str(s).map(DeviceId).map_err(|_| IdError {
            kind: "device id",
            reason: "must be a UUID",
        })
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.simple())
    }
}

/// What a document holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DocKind {
    /// A case (网格事件).
    Case,
    /// A patrol log (巡查日志).
    Patrol,
    /// A person of the grid's base data (人口).
    Person,
    /// A household (户).
    Household,
    /// A place: a building, a dwelling, a shop or an enterprise (地点).
    Place,
    /// A leader's manual adjustment of a grid worker's points (积分调整).
    Adjustment,
}

impl DocKind {
    /// Stable lowercase name, used as the id prefix and in the `docs` table.
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Case => "case",
            DocKind::Patrol => "patrol",
            DocKind::Person => "person",
            DocKind::Household => "household",
            DocKind::Place => "place",
            DocKind::Adjustment => "adjustment",
        }
    }

    /// Whether documents of this kind are the grid's base data (persons,
    /// households, places): kept only by those who need them (see
    /// [`crate::access::keeps_registry`]).
    pub fn is_registry(self) -> bool {
        matches!(self, DocKind::Person | DocKind::Household | DocKind::Place)
    }

    /// Every kind.
    pub const ALL: [DocKind; 6] = [
        DocKind::Case,
        DocKind::Patrol,
        DocKind::Person,
        DocKind::Household,
        DocKind::Place,
        DocKind::Adjustment,
    ];
}

/// A document id: `<kind>-<uuid>` (`case-…`, `patrol-…`, `person-…`, `household-…`, `place-…`, `adjustment-…`). The kind is part of the id so a
/// replica receiving changes for an unknown document knows what it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocId(String);

impl DocId {
    /// A fresh id for a new document of `kind`. The UUID is version 7: its first
    /// 48 bits are the creation time, so new documents land at the end of every
    /// index keyed by document id instead of on a random page of it (a report
    /// writes, and on an encrypted database encrypts, fewer pages); the other 74
    /// bits are random, so ids are still not guessable.
    pub fn new(kind: DocKind) -> Self {
        DocId(format!("{}-{}", kind.as_str(), Uuid::now_v7().simple()))
    }

    /// The kind of document this id names.
    pub fn kind(&self) -> DocKind {
        // Ids are made by `new` or checked by `from_str`: the prefix is a kind's.
        DocKind::ALL
            .into_iter()
            .find(|k| {
                self.0
                    .strip_prefix(k.as_str())
                    .is_some_and(|rest| rest.starts_with('-'))
            })
            .unwrap_or(DocKind::Case)
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DocId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let rest = DocKind::ALL
            .into_iter()
            .find_map(|k| s.strip_prefix(k.as_str())?.strip_prefix('-'))
            .ok_or(IdError {
                kind: "document id",
                reason: "must start with 'case-', 'patrol-', 'person-', 'household-', 'place-' or 'adjustment-'",
            })?;
        if rest.len() != 32 || !rest.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(IdError {
                kind: "document id",
                reason: "must end with 32 lowercase hex digits",
            });
        }
        Ok(DocId(s.to_owned()))
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The SHA-256 of a photo blob, as 64 lowercase hex digits. Photos live outside the
/// CRDT; documents hold only these hashes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhotoHash(String);

impl PhotoHash {
    /// The hash as hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PhotoHash {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(IdError {
                kind: "photo hash",
                reason: "must be 64 lowercase hex digits (SHA-256)",
            });
        }
        Ok(PhotoHash(s.to_owned()))
    }
}

impl fmt::Display for PhotoHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Serde through the string form, validated by `FromStr` on the way in: an id
/// that arrives in a message is checked where the message is decoded.
macro_rules! serde_via_str {
    ($($name:ident),*) => {$(
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

serde_via_str!(DeviceId, DocId, PhotoHash);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_codes_nest_by_prefix() {
        let town: RegionCode = "339901001".parse().unwrap();
        let grid: RegionCode = "339901001002003".parse().unwrap();
        let other: RegionCode = "339901002002003".parse().unwrap();
        assert_eq!(town.level(), RegionLevel::Town);
        assert_eq!(grid.level(), RegionLevel::Grid);
        assert!(town.contains(&grid));
        assert!(!town.contains(&other));
        assert_eq!(grid.ancestor(RegionLevel::Town), Some(town.clone()));
        assert_eq!(town.ancestor(RegionLevel::Grid), None);
        let city: RegionCode = "3399".parse().unwrap();
        assert_eq!(city.level(), RegionLevel::City);
        assert_eq!(grid.ancestor(RegionLevel::City), Some(city.clone()));
        assert!(city.contains(&town) && !city.contains(&"3398".parse().unwrap()));
        assert_eq!(RegionLevel::District.parent(), Some(RegionLevel::City));
        assert!(RegionLevel::City > RegionLevel::District);
        assert!("33990".parse::<RegionCode>().is_err());
        assert!("33990100a".parse::<RegionCode>().is_err());
    }

    #[test]
    fn doc_ids_carry_their_kind() {
        let id = DocId::new(DocKind::Patrol);
        assert_eq!(id.kind(), DocKind::Patrol);
        let parsed: DocId = id.to_string().parse().unwrap();
        assert_eq!(parsed, id);
        assert!("case-xyz".parse::<DocId>().is_err());
        assert!("note-0123456789abcdef0123456789abcdef"
            .parse::<DocId>()
            .is_err());
    }

    #[test]
    fn name_ids_reject_odd_characters() {
        assert!("w-339901001001001".parse::<UserId>().is_ok());
        assert!("".parse::<UserId>().is_err());
        assert!("王芳".parse::<UserId>().is_err());
        assert!("a b".parse::<DeptId>().is_err());
        assert!("x".repeat(65).parse::<DeptId>().is_err());
    }

    #[test]
    fn device_id_round_trips_and_is_the_actor() {
        let d = DeviceId::random();
        let parsed: DeviceId = d.to_string().parse().unwrap();
        assert_eq!(parsed, d);
        assert_eq!(d.actor().to_bytes(), d.0.as_bytes());
    }
}
