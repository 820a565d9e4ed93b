//! A place of the grid's base data (地点): a building, a dwelling (a house or flat),
//! a shop or an enterprise — one Automerge document each, scoped by grid like the
//! other base data.
//!
//! An organisation (单位: a shop's or an enterprise's operator) is not a document of
//! its own: it is the `org` facts of its place — type, unified social credit code,
//! contact — with the place's safety inspections (安全检查). A place and what runs
//! in it are found, visited and inspected together; a shop that closes and another
//! that opens in the same unit is the same place with new facts.
//!
//! Rental housing (出租房) is a dwelling whose occupancy is `rented`; its tenants
//! are the households living there (a household's `place`). The contact of an
//! organisation and the tenants are persons named by their documents' ids: a
//! person's data is only ever written into that person's document (ADR 0011), so
//! this document holds no personal data except what an inspection found.
//!
//! Every fact is a key of the document's root, so two workers editing the same
//! place offline merge field by field; inspections are a list that only grows.

use std::fmt;

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjType, ReadDoc, ROOT};
use chrono::{DateTime, Utc};

use super::{
    check_len, child, list_maps, opt_bool, opt_f64, opt_str, push_map, put_entry_photo, put_root,
    read_entry_photo, read_root, req_parse, req_str, req_time, schema_err, time_value, EntryPhoto,
    Fields, SchemaError,
};
use crate::ids::{DocId, DocKind, RegionCode, UserId};

/// Limits on one place, in characters.
pub mod limits {
    /// A place's name (3号楼, 平安超市 …).
    pub const NAME: usize = 100;
    /// An address.
    pub const ADDRESS: usize = 200;
    /// An organisation's type (餐饮, 零售, 小作坊 …).
    pub const ORG_TYPE: usize = 20;
    /// Inspections kept in one place's document.
    pub const INSPECTIONS: usize = 2_000;
    /// What one inspection found.
    pub const FINDINGS: usize = 1_000;
}

mod key {
    pub const GRID: &str = "grid";
    pub const PLACE_KIND: &str = "place_kind";
    pub const NAME: &str = "name";
    pub const ADDRESS: &str = "address";
    pub const WITHIN: &str = "within";
    pub const LAT: &str = "lat";
    pub const LON: &str = "lon";
    pub const OCCUPANCY: &str = "occupancy";
    pub const ORG_TYPE: &str = "org_type";
    pub const CREDIT_CODE: &str = "credit_code";
    pub const CONTACT: &str = "contact";
    pub const INSPECTIONS: &str = "inspections";
    pub const CREATED_BY: &str = "created_by";
    pub const CREATED: &str = "created";
    pub const AT: &str = "at";
    pub const BY: &str = "by";
    pub const PATROL: &str = "patrol";
    pub const PASSED: &str = "passed";
    pub const FINDINGS: &str = "findings";
}

/// Names stored in documents, and their Chinese labels, for the small closed sets
/// below.
macro_rules! closed_set {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $stored:literal, $zh:literal;)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in the order lists show them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable name stored in documents.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $stored,)+
                }
            }

            /// The name people read.
            pub fn label_zh(self) -> &'static str {
                match self {
                    $($name::$variant => $zh,)+
                }
            }

            /// The value stored as `s`.
            pub fn parse(s: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }
    };
}

closed_set! {
    /// What a place is.
    PlaceKind {
        /// 楼栋: a residential or office building.
        Building = "building", "楼栋";
        /// 房屋: a house or a flat.
        Dwelling = "dwelling", "房屋";
        /// 商铺: a shop.
        Shop = "shop", "商铺";
        /// 企业: an enterprise's premises.
        Enterprise = "enterprise", "企业";
        /// 其他: anything else worth knowing (a square, a construction site …).
        Other = "other", "其他";
    }
}

closed_set! {
    /// How a dwelling is lived in.
    Occupancy {
        /// 自住
        OwnerOccupied = "owner_occupied", "自住";
        /// 出租: rental housing.
        Rented = "rented", "出租";
        /// 空置
        Vacant = "vacant", "空置";
    }
}

/// A unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters
/// from a 31-character alphabet, the last a check character over the first 17.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CreditCode(String);

/// The alphabet of credit codes: digits and capitals without I, O, Z, S, V.
const CREDIT_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

impl CreditCode {
    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for CreditCode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_uppercase();
        let value = |b: u8| CREDIT_ALPHABET.iter().position(|&c| c == b);
        let digits: Option<Vec<usize>> = s.bytes().map(value).collect();
        let digits = match digits {
            Some(d) if d.len() == 18 => d,
            _ => {
                return Err("a unified social credit code is 18 digits and capital letters".into())
            }
        };
        let sum: u32 = digits[..17]
            .iter()
            .zip(CREDIT_WEIGHTS)
            .map(|(&d, w)| d as u32 * w)
            .sum();
        let check = (31 - sum % 31) % 31;
        if digits[17] as u32 != check {
            return Err("the unified social credit code's check character is wrong".into());
        }
        Ok(CreditCode(s))
    }
}

impl fmt::Debug for CreditCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A business's registration number is public, not personal data.
        f.write_str(&self.0)
    }
}

/// The organisation running in a shop or an enterprise.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OrgFacts {
    /// Its type (餐饮, 零售 …).
    pub org_type: String,
    /// Its unified social credit code.
    pub credit_code: Option<CreditCode>,
    /// Its contact (负责人), a person of the registry.
    pub contact: Option<DocId>,
}

/// A place as entered on a phone or imported.
#[derive(Clone, PartialEq)]
pub struct NewPlace {
    /// The grid it is in.
    pub grid: RegionCode,
    /// What it is.
    pub kind: PlaceKind,
    /// Its name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// The building it is in (a flat's or a shop's), a place's id.
    pub within: Option<DocId>,
    /// Where, (latitude, longitude) as the phone's GPS gives them (WGS-84).
    pub location: Option<(f64, f64)>,
    /// How a dwelling is lived in.
    pub occupancy: Option<Occupancy>,
    /// The organisation of a shop or an enterprise.
    pub org: Option<OrgFacts>,
}

/// The whole content of a place's document.
#[derive(Clone, PartialEq)]
pub struct PlaceDoc {
    /// Document id.
    pub id: DocId,
    /// The grid it is in.
    pub grid: RegionCode,
    /// What it is.
    pub kind: PlaceKind,
    /// Its name.
    pub name: String,
    /// Its address.
    pub address: String,
    /// The building it is in.
    pub within: Option<DocId>,
    /// Where (WGS-84).
    pub location: Option<(f64, f64)>,
    /// How a dwelling is lived in.
    pub occupancy: Option<Occupancy>,
    /// The organisation of a shop or an enterprise: present when any of its
    /// facts is.
    pub org: Option<OrgFacts>,
    /// Safety inspections, in the order recorded.
    pub inspections: Vec<Inspection>,
    /// Who registered it.
    pub created_by: UserId,
    /// When.
    pub created: DateTime<Utc>,
}

/// A safety inspection (安全检查) of a place, made on a patrol.
#[derive(Clone, PartialEq)]
pub struct Inspection {
    /// When.
    pub at: DateTime<Utc>,
    /// Who inspected.
    pub by: UserId,
    /// The patrol it was made on.
    pub patrol: DocId,
    /// Whether the place passed.
    pub passed: bool,
    /// What it found (a blocked exit, an expired extinguisher …).
    pub findings: String,
    /// A photo taken there.
    pub photo: Option<EntryPhoto>,
}

/// A change to a place's facts: each `Some` field is set (`Some(None)` clears it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlaceEdit {
    /// New name.
    pub name: Option<String>,
    /// New address.
    pub address: Option<String>,
    /// New or cleared building.
    pub within: Option<Option<DocId>>,
    /// New or cleared position.
    pub location: Option<Option<(f64, f64)>>,
    /// New or cleared occupancy.
    pub occupancy: Option<Option<Occupancy>>,
    /// New organisation type.
    pub org_type: Option<String>,
    /// New or cleared credit code.
    pub credit_code: Option<Option<CreditCode>>,
    /// New or cleared contact.
    pub contact: Option<Option<DocId>>,
}

fn check_ref(field: &'static str, id: &Option<DocId>, kind: DocKind) -> Result<(), String> {
    match id {
        Some(id) if id.kind() != kind => Err(format!("{field} must be a {}'s id", kind.as_str())),
        _ => Ok(()),
    }
}

fn check_location(location: Option<(f64, f64)>) -> Result<(), String> {
    match location {
        Some((lat, lon)) => super::case::check_coordinates(lat, lon)
            .map_err(|e| format!("{}: {}", e.field, e.reason)),
        None => Ok(()),
    }
}

impl NewPlace {
    /// Whether every field is within its limits. Occupancy is for dwellings and
    /// organisation facts for shops and enterprises.
    pub fn validate(&self) -> Result<(), String> {
        check_len("name", &self.name, limits::NAME, true)?;
        check_len("address", &self.address, limits::ADDRESS, true)?;
        check_ref("within", &self.within, DocKind::Place)?;
        check_location(self.location)?;
        if self.occupancy.is_some() && self.kind != PlaceKind::Dwelling {
            return Err("occupancy is for dwellings".into());
        }
        if let Some(org) = &self.org {
            if !matches!(self.kind, PlaceKind::Shop | PlaceKind::Enterprise) {
                return Err("organisation facts are for shops and enterprises".into());
            }
            check_len("org_type", &org.org_type, limits::ORG_TYPE, false)?;
            check_ref("contact", &org.contact, DocKind::Person)?;
        }
        Ok(())
    }

    /// The same facts as an edit of an empty place.
    fn as_edit(&self) -> PlaceEdit {
        let org = self.org.clone().unwrap_or_default();
        PlaceEdit {
            name: Some(self.name.clone()),
            address: Some(self.address.clone()),
            within: Some(self.within.clone()),
            location: Some(self.location),
            occupancy: Some(self.occupancy),
            org_type: self.org.as_ref().map(|_| org.org_type.clone()),
            credit_code: self.org.as_ref().map(|_| org.credit_code.clone()),
            contact: self.org.as_ref().map(|_| org.contact.clone()),
        }
    }
}

impl PlaceEdit {
    /// Whether the edit is within the limits.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(name) = &self.name {
            check_len("name", name, limits::NAME, true)?;
        }
        if let Some(address) = &self.address {
            check_len("address", address, limits::ADDRESS, true)?;
        }
        if let Some(t) = &self.org_type {
            check_len("org_type", t, limits::ORG_TYPE, false)?;
        }
        check_ref("within", &self.within.clone().flatten(), DocKind::Place)?;
        check_ref("contact", &self.contact.clone().flatten(), DocKind::Person)?;
        check_location(self.location.flatten())
    }

    /// Whether the edit sets organisation facts.
    pub fn touches_org(&self) -> bool {
        self.org_type.is_some() || self.credit_code.is_some() || self.contact.is_some()
    }

    /// Write the edit.
    pub fn apply<T: Transactable>(&self, tx: &mut T) -> Result<(), AutomergeError> {
        let text = |v: Option<&str>| v.unwrap_or_default().to_owned();
        if let Some(name) = &self.name {
            tx.put(ROOT, key::NAME, name.as_str())?;
        }
        if let Some(address) = &self.address {
            tx.put(ROOT, key::ADDRESS, address.as_str())?;
        }
        if let Some(within) = &self.within {
            tx.put(ROOT, key::WITHIN, text(within.as_ref().map(DocId::as_str)))?;
        }
        if let Some(location) = self.location {
            match location {
                Some((lat, lon)) => {
                    tx.put(ROOT, key::LAT, lat)?;
                    tx.put(ROOT, key::LON, lon)?;
                }
                None => {
                    tx.delete(ROOT, key::LAT)?;
                    tx.delete(ROOT, key::LON)?;
                }
            }
        }
        if let Some(occupancy) = self.occupancy {
            tx.put(ROOT, key::OCCUPANCY, text(occupancy.map(Occupancy::as_str)))?;
        }
        if let Some(t) = &self.org_type {
            tx.put(ROOT, key::ORG_TYPE, t.as_str())?;
        }
        if let Some(code) = &self.credit_code {
            tx.put(
                ROOT,
                key::CREDIT_CODE,
                text(code.as_ref().map(CreditCode::as_str)),
            )?;
        }
        if let Some(contact) = &self.contact {
            tx.put(
                ROOT,
                key::CONTACT,
                text(contact.as_ref().map(DocId::as_str)),
            )?;
        }
        Ok(())
    }
}

/// An optional reference to a document of `kind`: `None` when absent or empty.
fn opt_ref(
    root: &Fields,
    field: &'static str,
    kind: DocKind,
) -> Result<Option<DocId>, SchemaError> {
    match opt_str(root, field)?.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<DocId>()
            .ok()
            .filter(|id| id.kind() == kind)
            .map(Some)
            .ok_or_else(|| schema_err(field, "not a document id of the right kind")),
    }
}

impl PlaceDoc {
    /// Write a new place into an empty document.
    pub fn write_new<T: Transactable>(
        tx: &mut T,
        id: &DocId,
        by: &UserId,
        at: DateTime<Utc>,
        p: &NewPlace,
    ) -> Result<(), AutomergeError> {
        put_root(tx, DocKind::Place.as_str(), id)?;
        tx.put(ROOT, key::GRID, p.grid.as_str())?;
        tx.put(ROOT, key::PLACE_KIND, p.kind.as_str())?;
        tx.put(ROOT, key::CREATED_BY, by.as_str())?;
        tx.put(ROOT, key::CREATED, time_value(at))?;
        tx.put_object(ROOT, key::INSPECTIONS, ObjType::List)?;
        p.as_edit().apply(tx)
    }

    /// Read and validate a place's document.
    pub fn read(doc: &impl ReadDoc, id: &DocId) -> Result<PlaceDoc, SchemaError> {
        let root = read_root(doc, DocKind::Place.as_str(), id)?;
        let kind = PlaceKind::parse(&req_str(&root, key::PLACE_KIND)?)
            .ok_or_else(|| schema_err(key::PLACE_KIND, "not a place kind"))?;
        let name = req_str(&root, key::NAME)?;
        let address = req_str(&root, key::ADDRESS)?;
        let org_type = opt_str(&root, key::ORG_TYPE)?;
        for (field, text, max) in [
            (key::NAME, name.as_str(), limits::NAME),
            (key::ADDRESS, address.as_str(), limits::ADDRESS),
            (
                key::ORG_TYPE,
                org_type.as_deref().unwrap_or(""),
                limits::ORG_TYPE,
            ),
        ] {
            if text.chars().count() > max {
                return Err(schema_err(field, "is longer than allowed"));
            }
        }
        let location = match (opt_f64(&root, key::LAT)?, opt_f64(&root, key::LON)?) {
            (Some(lat), Some(lon)) => {
                check_location(Some((lat, lon)))
                    .map_err(|_| schema_err(key::LAT, "not a position on earth"))?;
                Some((lat, lon))
            }
            _ => None,
        };
        let occupancy = match opt_str(&root, key::OCCUPANCY)?.filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(
                Occupancy::parse(&s)
                    .ok_or_else(|| schema_err(key::OCCUPANCY, "not an occupancy"))?,
            ),
        };
        let credit_code = opt_str(&root, key::CREDIT_CODE)?
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<CreditCode>())
            .transpose()
            .map_err(|_| schema_err(key::CREDIT_CODE, "not a valid credit code"))?;
        let contact = opt_ref(&root, key::CONTACT, DocKind::Person)?;
        let org =
            (org_type.is_some() || credit_code.is_some() || contact.is_some()).then(|| OrgFacts {
                org_type: org_type.unwrap_or_default(),
                credit_code,
                contact,
            });
        let mut inspections = Vec::new();
        if let Some(list) = child(&root, key::INSPECTIONS, ObjType::List)? {
            if doc.length(&list) > limits::INSPECTIONS {
                return Err(schema_err(key::INSPECTIONS, "has more items than allowed"));
            }
            for obj in list_maps(doc, &list, key::INSPECTIONS)? {
                let f = Fields::of(doc, &obj);
                let findings = req_str(&f, key::FINDINGS)?;
                if findings.chars().count() > limits::FINDINGS {
                    return Err(schema_err(key::FINDINGS, "is longer than allowed"));
                }
                inspections.push(Inspection {
                    at: req_time(&f, key::AT)?,
                    by: req_parse(&f, key::BY)?,
                    patrol: req_parse::<DocId>(&f, key::PATROL)
                        .ok()
                        .filter(|p| p.kind() == DocKind::Patrol)
                        .ok_or_else(|| schema_err(key::PATROL, "not a patrol's document id"))?,
                    passed: opt_bool(&f, key::PASSED)?
                        .ok_or_else(|| schema_err(key::PASSED, "is required"))?,
                    findings,
                    photo: read_entry_photo(&f)?,
                });
            }
        }
        // What a kind may hold, whoever wrote it: a document that breaks it is
        // refused, so no count of rental housing or organisations is skewed.
        if occupancy.is_some() && kind != PlaceKind::Dwelling {
            return Err(schema_err(key::OCCUPANCY, "is for dwellings only"));
        }
        if org.is_some() && !matches!(kind, PlaceKind::Shop | PlaceKind::Enterprise) {
            return Err(schema_err(
                key::ORG_TYPE,
                "is for shops and enterprises only",
            ));
        }
        Ok(PlaceDoc {
            id: id.clone(),
            grid: req_parse(&root, key::GRID)?,
            kind,
            name,
            address,
            within: opt_ref(&root, key::WITHIN, DocKind::Place)?,
            location,
            occupancy,
            org,
            inspections,
            created_by: req_parse(&root, key::CREATED_BY)?,
            created: req_time(&root, key::CREATED)?,
        })
    }
}

/// Record an inspection of the place.
pub fn add_inspection<T: Transactable>(
    tx: &mut T,
    inspection: &Inspection,
) -> Result<(), AutomergeError> {
    let list = match tx.get(ROOT, key::INSPECTIONS)? {
        Some((automerge::Value::Object(ObjType::List), obj)) => obj,
        _ => tx.put_object(ROOT, key::INSPECTIONS, ObjType::List)?,
    };
    let obj = push_map(tx, &list)?;
    tx.put(&obj, key::AT, time_value(inspection.at))?;
    tx.put(&obj, key::BY, inspection.by.as_str())?;
    tx.put(&obj, key::PATROL, inspection.patrol.as_str())?;
    tx.put(&obj, key::PASSED, inspection.passed)?;
    tx.put(&obj, key::FINDINGS, inspection.findings.as_str())?;
    put_entry_photo(tx, &obj, inspection.photo.as_ref())
}

// Debug prints ids, kinds and counts, never a name, an address or a finding.

impl fmt::Debug for NewPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewPlace")
            .field("grid", &self.grid)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for PlaceDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlaceDoc")
            .field("id", &self.id)
            .field("grid", &self.grid)
            .field("kind", &self.kind)
            .field("occupancy", &self.occupancy)
            .field("inspections", &self.inspections.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inspection")
            .field("at", &self.at)
            .field("patrol", &self.patrol)
            .field("passed", &self.passed)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_codes_are_checked_by_their_last_character() {
        // The standard's worked example, and one whose check character is a letter.
        for good in ["91350100M000100Y43", "91110000100000379X"] {
            assert!(good.parse::<CreditCode>().is_ok(), "{good}");
        }
        assert!("91350100M000100Y44".parse::<CreditCode>().is_err());
        assert!("91350100M000100Y4".parse::<CreditCode>().is_err());
        assert!(
            "91350100I000100Y43".parse::<CreditCode>().is_err(),
            "I is not in the alphabet"
        );
        assert_eq!(
            "91350100m000100y43".parse::<CreditCode>().unwrap().as_str(),
            "91350100M000100Y43"
        );
    }

    #[test]
    fn a_place_reads_back_what_was_written_and_org_facts_only_with_a_shop() {
        let id = DocId::new(DocKind::Place);
        let contact = DocId::new(DocKind::Person);
        let shop = NewPlace {
            grid: "339901001001001".parse().unwrap(),
            kind: PlaceKind::Shop,
            name: "平安超市".into(),
            address: "幸福路 8 号".into(),
            within: None,
            location: Some((30.27, 120.15)),
            occupancy: None,
            org: Some(OrgFacts {
                org_type: "零售".into(),
                credit_code: Some("91350100M000100Y43".parse().unwrap()),
                contact: Some(contact.clone()),
            }),
        };
        shop.validate().unwrap();
        let mut doc = automerge::Automerge::new();
        doc.transact::<_, _, AutomergeError>(|tx| {
            PlaceDoc::write_new(tx, &id, &"w-1".parse().unwrap(), Utc::now(), &shop)
        })
        .unwrap();
        let read = PlaceDoc::read(&doc, &id).unwrap();
        assert_eq!(read.name, "平安超市");
        assert_eq!(read.location, Some((30.27, 120.15)));
        assert_eq!(
            read.org.as_ref().and_then(|o| o.contact.clone()),
            Some(contact)
        );
        assert!(
            !format!("{read:?}").contains("平安"),
            "Debug carries no name"
        );

        let flat = NewPlace {
            kind: PlaceKind::Dwelling,
            org: None,
            occupancy: Some(Occupancy::Rented),
            ..shop.clone()
        };
        flat.validate().unwrap();
        assert!(NewPlace {
            occupancy: Some(Occupancy::Rented),
            ..shop.clone()
        }
        .validate()
        .is_err());
        assert!(NewPlace {
            org: shop.org.clone(),
            ..flat
        }
        .validate()
        .is_err());
    }
}
