//! The grid's base data (基础信息): a person (人口) and a household (户), one Automerge
//! document each, scoped by grid like cases and patrols.
//!
//! Every field is a key of the document's root, so two workers editing the same
//! person offline merge field by field (a concurrent edit of the same field is
//! settled the same way on every replica: Automerge keeps the value of the change
//! with the greater operation id). Special-group tags are a map of tag → `true`, so
//! one worker adding 独居老人 and another adding 低保 keeps both.
//!
//! Membership lives on the person, not the household: a person's `household` and
//! `relation` are two keys of the person's document, so moving a person to another
//! household is one change to one document, and two workers moving the same person
//! to different households offline end, on every replica, in the same one (never in
//! both, never in none). A household's members are the persons naming it. A
//! household leaving the grid (搬离) is its `left` time, set once.
//!
//! Personal data: names, ID numbers, phone numbers, tags and notes are here in full;
//! lists and exports show them masked (see [`crate::pii`]); department handlers
//! never receive these documents (their scope is the cases dispatched to them).

use std::fmt;

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjType, ReadDoc, ROOT};
use chrono::{DateTime, NaiveDate, Utc};

use super::{
    check_len, child, list_maps, opt_str, opt_time, push_map, put_entry_photo, put_root,
    read_entry_photo, read_root, req_parse, req_str, req_time, schema_err, time_value, EntryPhoto,
    Fields, SchemaError,
};
use crate::ids::{DocId, DocKind, RegionCode, UserId};
use crate::pii::{Phone, ResidentId, Sex};

/// Limits on one person or household, in characters.
pub mod limits {
    /// A name.
    pub const NAME: usize = 50;
    /// A relationship to the head of household.
    pub const RELATION: usize = 20;
    /// An address.
    pub const ADDRESS: usize = 200;
    /// Notes on a person.
    pub const NOTES: usize = 2_000;
    /// Visits kept in one household's document (ten years of weekly visits).
    pub const VISITS: usize = 2_000;
    /// What one visit found.
    pub const FINDINGS: usize = 1_000;
}

mod key {
    pub const GRID: &str = "grid";
    pub const NAME: &str = "name";
    pub const SEX: &str = "sex";
    pub const BORN: &str = "born";
    pub const ID_NUMBER: &str = "id_number";
    pub const PHONE: &str = "phone";
    pub const HOUSEHOLD: &str = "household";
    pub const RELATION: &str = "relation";
    pub const TAGS: &str = "tags";
    pub const NOTES: &str = "notes";
    pub const ADDRESS: &str = "address";
    pub const HEAD: &str = "head";
    pub const LEFT: &str = "left";
    pub const PLACE: &str = "place";
    pub const CREATED_BY: &str = "created_by";
    pub const CREATED: &str = "created";
    pub const VISITS: &str = "visits";
    pub const AT: &str = "at";
    pub const BY: &str = "by";
    pub const PATROL: &str = "patrol";
    pub const FINDINGS: &str = "findings";
}

/// The special groups (特殊人群) a town follows up with visits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tag {
    /// 独居老人
    ElderlyAlone,
    /// 残疾人
    Disabled,
    /// 低保
    LowIncome,
    /// 留守儿童
    LeftBehindChild,
    /// 社区矫正
    CommunityCorrection,
    /// 严重精神障碍
    MentalIllness,
}

impl Tag {
    /// Every tag, in the order lists show them.
    pub const ALL: [Tag; 6] = [
        Tag::ElderlyAlone,
        Tag::Disabled,
        Tag::LowIncome,
        Tag::LeftBehindChild,
        Tag::CommunityCorrection,
        Tag::MentalIllness,
    ];

    /// The stable name stored in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Tag::ElderlyAlone => "elderly_alone",
            Tag::Disabled => "disabled",
            Tag::LowIncome => "low_income",
            Tag::LeftBehindChild => "left_behind_child",
            Tag::CommunityCorrection => "community_correction",
            Tag::MentalIllness => "mental_illness",
        }
    }

    /// The name people read.
    pub fn label_zh(self) -> &'static str {
        match self {
            Tag::ElderlyAlone => "独居老人",
            Tag::Disabled => "残疾人",
            Tag::LowIncome => "低保",
            Tag::LeftBehindChild => "留守儿童",
            Tag::CommunityCorrection => "社区矫正",
            Tag::MentalIllness => "严重精神障碍",
        }
    }

    /// The tag stored as `s`.
    pub fn parse(s: &str) -> Option<Tag> {
        Tag::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

fn sex_str(sex: Sex) -> &'static str {
    match sex {
        Sex::Male => "male",
        Sex::Female => "female",
    }
}

/// A person as entered on a phone or imported from a roster.
#[derive(Clone, PartialEq)]
pub struct NewPerson {
    /// The grid the person lives in.
    pub grid: RegionCode,
    /// Name.
    pub name: String,
    /// Resident ID number; sex and birth date come from it when present.
    pub id_number: Option<ResidentId>,
    /// Sex, when there is no ID number.
    pub sex: Option<Sex>,
    /// Birth date, when there is no ID number.
    pub born: Option<NaiveDate>,
    /// Phone number.
    pub phone: Option<Phone>,
    /// The household and the relationship to its head (户主, 配偶, 子女 …).
    pub household: Option<(DocId, String)>,
    /// Special groups.
    pub tags: Vec<Tag>,
    /// Notes.
    pub notes: String,
}

/// The whole content of a person's document.
#[derive(Clone, PartialEq)]
pub struct PersonDoc {
    /// Document id.
    pub id: DocId,
    /// The grid the person lives in.
    pub grid: RegionCode,
    /// Name.
    pub name: String,
    /// Sex.
    pub sex: Option<Sex>,
    /// Birth date.
    pub born: Option<NaiveDate>,
    /// Resident ID number.
    pub id_number: Option<ResidentId>,
    /// Phone number.
    pub phone: Option<Phone>,
    /// The household, and the relationship to its head.
    pub household: Option<(DocId, String)>,
    /// Special groups, in [`Tag::ALL`] order.
    pub tags: Vec<Tag>,
    /// Notes.
    pub notes: String,
    /// Who registered the person.
    pub created_by: UserId,
    /// When.
    pub created: DateTime<Utc>,
}

/// A household link: a household's id and a relationship within the limit,
/// required when entered (`entered`); a document read may carry an empty one (a
/// concurrent move out and in can merge to that).
fn check_household(household: &Option<(DocId, String)>, entered: bool) -> Result<(), String> {
    match household {
        Some((id, _)) if id.kind() != DocKind::Household => {
            Err("household must be a household's document id".into())
        }
        Some((_, relation)) => check_len("relation", relation, limits::RELATION, entered),
        None => Ok(()),
    }
}

impl NewPerson {
    /// Whether every field is within its limits and the birth facts agree with the
    /// ID number. The message names the field, never its content.
    pub fn validate(&self) -> Result<(), String> {
        check_len("name", &self.name, limits::NAME, true)?;
        check_len("notes", &self.notes, limits::NOTES, false)?;
        check_household(&self.household, true)?;
        if let Some(id) = &self.id_number {
            if self.sex.is_some_and(|s| s != id.sex()) {
                return Err("sex does not match the ID number".into());
            }
            if self.born.is_some_and(|b| b != id.birth_date()) {
                return Err("birth date does not match the ID number".into());
            }
        }
        Ok(())
    }
}

impl PersonDoc {
    /// Write a new person into an empty document.
    pub fn write_new<T: Transactable>(
        tx: &mut T,
        id: &DocId,
        by: &UserId,
        at: DateTime<Utc>,
        p: &NewPerson,
    ) -> Result<(), AutomergeError> {
        put_root(tx, DocKind::Person.as_str(), id)?;
        tx.put(ROOT, key::GRID, p.grid.as_str())?;
        tx.put(ROOT, key::CREATED_BY, by.as_str())?;
        tx.put(ROOT, key::CREATED, time_value(at))?;
        tx.put_object(ROOT, key::TAGS, ObjType::Map)?;
        let edit = PersonEdit {
            name: Some(p.name.clone()),
            id_number: Some(p.id_number.clone()),
            sex: Some(p.id_number.as_ref().map(ResidentId::sex).or(p.sex)),
            born: Some(p.id_number.as_ref().map(ResidentId::birth_date).or(p.born)),
            phone: Some(p.phone.clone()),
            notes: Some(p.notes.clone()),
            add_tags: p.tags.clone(),
            remove_tags: Vec::new(),
        };
        edit.apply(tx)?;
        set_household(tx, p.household.as_ref())
    }

    /// Read and validate a person's document.
    pub fn read(doc: &impl ReadDoc, id: &DocId) -> Result<PersonDoc, SchemaError> {
        let root = read_root(doc, DocKind::Person.as_str(), id)?;
        let name = req_str(&root, key::NAME)?;
        let notes = opt_str(&root, key::NOTES)?.unwrap_or_default();
        for (field, text, max) in [
            (key::NAME, &name, limits::NAME),
            (key::NOTES, &notes, limits::NOTES),
        ] {
            if text.chars().count() > max {
                return Err(schema_err(field, "is longer than allowed"));
            }
        }
        let id_number = opt_str(&root, key::ID_NUMBER)?
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<ResidentId>())
            .transpose()
            .map_err(|_| schema_err(key::ID_NUMBER, "not a valid ID number"))?;
        let phone = opt_str(&root, key::PHONE)?
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<Phone>())
            .transpose()
            .map_err(|_| schema_err(key::PHONE, "not a valid phone number"))?;
        let sex = match opt_str(&root, key::SEX)?.as_deref() {
            None | Some("") => None,
            Some("male") => Some(Sex::Male),
            Some("female") => Some(Sex::Female),
            Some(_) => return Err(schema_err(key::SEX, "not male or female")),
        };
        let born = opt_str(&root, key::BORN)?
            .filter(|s| !s.is_empty())
            .map(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d"))
            .transpose()
            .map_err(|_| schema_err(key::BORN, "not a date"))?;
        let household = match opt_str(&root, key::HOUSEHOLD)?.filter(|s| !s.is_empty()) {
            None => None,
            Some(h) => {
                let h: DocId = h
                    .parse()
                    .map_err(|_| schema_err(key::HOUSEHOLD, "not a document id"))?;
                let relation = opt_str(&root, key::RELATION)?.unwrap_or_default();
                Some((h, relation))
            }
        };
        check_household(&household, false).map_err(|_| schema_err(key::HOUSEHOLD, "not valid"))?;
        // A tag counts when its value is `true`. A key this version does not know
        // (a group added by a later one) is passed over, not refused: refusing it
        // would make the person unreadable here and the push refused.
        let mut tags = Vec::new();
        if let Some(map) = child(&root, key::TAGS, ObjType::Map)? {
            if doc.length(&map) > 4 * Tag::ALL.len() {
                return Err(schema_err(key::TAGS, "has more entries than allowed"));
            }
            for k in doc.keys(&map) {
                let set = matches!(
                    doc.get(&map, &k),
                    Ok(Some((automerge::Value::Scalar(v), _)))
                        if matches!(v.as_ref(), automerge::ScalarValue::Boolean(true))
                );
                if let (Some(tag), true) = (Tag::parse(&k), set) {
                    tags.push(tag);
                }
            }
        }
        tags.sort();
        Ok(PersonDoc {
            id: id.clone(),
            grid: req_parse(&root, key::GRID)?,
            name,
            sex,
            born,
            id_number,
            phone,
            household,
            tags,
            notes,
            created_by: req_parse(&root, key::CREATED_BY)?,
            created: req_time(&root, key::CREATED)?,
        })
    }
}

/// A change to a person's own facts: each `Some` field is set (a `Some(None)`
/// clears it), tags are added and removed one by one.
#[derive(Clone, Default, PartialEq)]
pub struct PersonEdit {
    /// New name.
    pub name: Option<String>,
    /// New or cleared ID number.
    pub id_number: Option<Option<ResidentId>>,
    /// New or cleared sex.
    pub sex: Option<Option<Sex>>,
    /// New or cleared birth date.
    pub born: Option<Option<NaiveDate>>,
    /// New or cleared phone number.
    pub phone: Option<Option<Phone>>,
    /// New notes.
    pub notes: Option<String>,
    /// Tags to add.
    pub add_tags: Vec<Tag>,
    /// Tags to remove.
    pub remove_tags: Vec<Tag>,
}

impl PersonEdit {
    /// Whether the edit is within the limits. Consistency with the ID number is
    /// checked on the person as it is after the edit.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(name) = &self.name {
            check_len("name", name, limits::NAME, true)?;
        }
        if let Some(notes) = &self.notes {
            check_len("notes", notes, limits::NOTES, false)?;
        }
        Ok(())
    }

    /// Write the edit.
    pub fn apply<T: Transactable>(&self, tx: &mut T) -> Result<(), AutomergeError> {
        let text = |v: Option<String>| v.unwrap_or_default();
        if let Some(name) = &self.name {
            tx.put(ROOT, key::NAME, name.as_str())?;
        }
        if let Some(id) = &self.id_number {
            tx.put(
                ROOT,
                key::ID_NUMBER,
                text(id.as_ref().map(|i| i.full().to_owned())),
            )?;
        }
        if let Some(sex) = &self.sex {
            tx.put(ROOT, key::SEX, sex.map(sex_str).unwrap_or_default())?;
        }
        if let Some(born) = &self.born {
            tx.put(
                ROOT,
                key::BORN,
                text(born.map(|b| b.format("%Y-%m-%d").to_string())),
            )?;
        }
        if let Some(phone) = &self.phone {
            tx.put(
                ROOT,
                key::PHONE,
                text(phone.as_ref().map(|p| p.full().to_owned())),
            )?;
        }
        if let Some(notes) = &self.notes {
            tx.put(ROOT, key::NOTES, notes.as_str())?;
        }
        if !self.add_tags.is_empty() || !self.remove_tags.is_empty() {
            let tags = match tx.get(ROOT, key::TAGS)? {
                Some((automerge::Value::Object(ObjType::Map), obj)) => obj,
                _ => tx.put_object(ROOT, key::TAGS, ObjType::Map)?,
            };
            for tag in &self.add_tags {
                tx.put(&tags, tag.as_str(), true)?;
            }
            for tag in &self.remove_tags {
                tx.delete(&tags, tag.as_str())?;
            }
        }
        Ok(())
    }
}

/// Move a person into `household` (with the relationship to its head), or out of
/// any household with `None`: one change to the person's document.
pub fn set_household<T: Transactable>(
    tx: &mut T,
    household: Option<&(DocId, String)>,
) -> Result<(), AutomergeError> {
    match household {
        Some((id, relation)) => {
            tx.put(ROOT, key::HOUSEHOLD, id.as_str())?;
            tx.put(ROOT, key::RELATION, relation.as_str())?;
        }
        None => {
            tx.put(ROOT, key::HOUSEHOLD, "")?;
            tx.put(ROOT, key::RELATION, "")?;
        }
    }
    Ok(())
}

/// The whole content of a household's document.
#[derive(Clone, PartialEq)]
pub struct HouseholdDoc {
    /// Document id.
    pub id: DocId,
    /// The grid it lives in.
    pub grid: RegionCode,
    /// Its address.
    pub address: String,
    /// The head of household (户主), a person's document id.
    pub head: Option<DocId>,
    /// When it left the grid, if it has.
    pub left: Option<DateTime<Utc>>,
    /// The dwelling it lives in, a place's id (a rented one makes it a tenant).
    pub place: Option<DocId>,
    /// Visits (走访), in the order recorded. What they found stays here, so it goes
    /// with the household when it is erased.
    pub visits: Vec<Visit>,
    /// Who registered it.
    pub created_by: UserId,
    /// When.
    pub created: DateTime<Utc>,
}

/// A visit to a household during a patrol.
#[derive(Clone, PartialEq)]
pub struct Visit {
    /// When.
    pub at: DateTime<Utc>,
    /// Who visited.
    pub by: UserId,
    /// The patrol it was made on (its check-in there has the place and time).
    pub patrol: DocId,
    /// What it found. Personal data.
    pub findings: String,
    /// A photo taken there.
    pub photo: Option<EntryPhoto>,
}

impl HouseholdDoc {
    /// Write a new household into an empty document.
    pub fn write_new<T: Transactable>(
        tx: &mut T,
        id: &DocId,
        by: &UserId,
        at: DateTime<Utc>,
        grid: &RegionCode,
        address: &str,
    ) -> Result<(), AutomergeError> {
        put_root(tx, DocKind::Household.as_str(), id)?;
        tx.put(ROOT, key::GRID, grid.as_str())?;
        tx.put(ROOT, key::ADDRESS, address)?;
        tx.put(ROOT, key::CREATED_BY, by.as_str())?;
        tx.put(ROOT, key::CREATED, time_value(at))?;
        tx.put_object(ROOT, key::VISITS, ObjType::List)?;
        Ok(())
    }

    /// Read and validate a household's document.
    pub fn read(doc: &impl ReadDoc, id: &DocId) -> Result<HouseholdDoc, SchemaError> {
        let root = read_root(doc, DocKind::Household.as_str(), id)?;
        let address = req_str(&root, key::ADDRESS)?;
        if address.chars().count() > limits::ADDRESS {
            return Err(schema_err(key::ADDRESS, "is longer than allowed"));
        }
        let head = opt_str(&root, key::HEAD)?
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<DocId>())
            .transpose()
            .ok()
            .flatten()
            .filter(|h| h.kind() == DocKind::Person);
        if opt_str(&root, key::HEAD)?.is_some_and(|s| !s.is_empty()) && head.is_none() {
            return Err(schema_err(key::HEAD, "not a person's document id"));
        }
        let mut visits = Vec::new();
        if let Some(list) = child(&root, key::VISITS, ObjType::List)? {
            if doc.length(&list) > limits::VISITS {
                return Err(schema_err(key::VISITS, "has more items than allowed"));
            }
            for obj in list_maps(doc, &list, key::VISITS)? {
                let f = Fields::of(doc, &obj);
                let findings = req_str(&f, key::FINDINGS)?;
                if findings.chars().count() > limits::FINDINGS {
                    return Err(schema_err(key::FINDINGS, "is longer than allowed"));
                }
                visits.push(Visit {
                    at: req_time(&f, key::AT)?,
                    by: req_parse(&f, key::BY)?,
                    patrol: req_parse::<DocId>(&f, key::PATROL)
                        .ok()
                        .filter(|p| p.kind() == DocKind::Patrol)
                        .ok_or_else(|| schema_err(key::PATROL, "not a patrol's document id"))?,
                    findings,
                    photo: read_entry_photo(&f)?,
                });
            }
        }
        Ok(HouseholdDoc {
            id: id.clone(),
            grid: req_parse(&root, key::GRID)?,
            address,
            head,
            left: opt_time(&root, key::LEFT)?,
            place: match opt_str(&root, key::PLACE)?.filter(|s| !s.is_empty()) {
                None => None,
                Some(p) => Some(
                    p.parse::<DocId>()
                        .ok()
                        .filter(|p| p.kind() == DocKind::Place)
                        .ok_or_else(|| schema_err(key::PLACE, "not a place's document id"))?,
                ),
            },
            visits,
            created_by: req_parse(&root, key::CREATED_BY)?,
            created: req_time(&root, key::CREATED)?,
        })
    }
}

/// Name `person` the head of household (or nobody with `None`).
pub fn set_head<T: Transactable>(tx: &mut T, person: Option<&DocId>) -> Result<(), AutomergeError> {
    tx.put(
        ROOT,
        key::HEAD,
        person.map(DocId::as_str).unwrap_or_default(),
    )
}

/// Record the dwelling the household lives in (or none with `None`).
pub fn set_place<T: Transactable>(tx: &mut T, place: Option<&DocId>) -> Result<(), AutomergeError> {
    tx.put(
        ROOT,
        key::PLACE,
        place.map(DocId::as_str).unwrap_or_default(),
    )
}

/// Record a visit to the household.
pub fn add_visit<T: Transactable>(tx: &mut T, visit: &Visit) -> Result<(), AutomergeError> {
    let list = match tx.get(ROOT, key::VISITS)? {
        Some((automerge::Value::Object(ObjType::List), obj)) => obj,
        _ => tx.put_object(ROOT, key::VISITS, ObjType::List)?,
    };
    let obj = push_map(tx, &list)?;
    tx.put(&obj, key::AT, time_value(visit.at))?;
    tx.put(&obj, key::BY, visit.by.as_str())?;
    tx.put(&obj, key::PATROL, visit.patrol.as_str())?;
    tx.put(&obj, key::FINDINGS, visit.findings.as_str())?;
    put_entry_photo(tx, &obj, visit.photo.as_ref())
}

/// Record that the household left the grid (搬离) at `at`.
pub fn leave<T: Transactable>(tx: &mut T, at: DateTime<Utc>) -> Result<(), AutomergeError> {
    tx.put(ROOT, key::LEFT, time_value(at))
}

// Debug prints ids and counts, never a name, number, address, note or finding:
// a value that reaches a log line or a panic message carries no personal data.

impl fmt::Debug for NewPerson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewPerson")
            .field("grid", &self.grid)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for PersonDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersonDoc")
            .field("id", &self.id)
            .field("grid", &self.grid)
            .field("household", &self.household.as_ref().map(|(h, _)| h))
            .field("tags", &self.tags.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for PersonEdit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersonEdit").finish_non_exhaustive()
    }
}

impl fmt::Debug for HouseholdDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HouseholdDoc")
            .field("id", &self.id)
            .field("grid", &self.grid)
            .field("head", &self.head)
            .field("left", &self.left)
            .field("visits", &self.visits.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Visit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Visit")
            .field("at", &self.at)
            .field("patrol", &self.patrol)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{Automerge, ObjType, ReadDoc, ROOT};

    use super::*;

    #[test]
    fn a_tag_counts_when_true_and_an_unknown_one_is_passed_over() {
        let id = DocId::new(DocKind::Person);
        let mut doc = Automerge::new();
        let person = NewPerson {
            grid: "339901001001001".parse().unwrap(),
            name: "张建国".into(),
            id_number: None,
            sex: None,
            born: None,
            phone: None,
            household: None,
            tags: vec![Tag::LowIncome],
            notes: String::new(),
        };
        doc.transact::<_, _, AutomergeError>(|tx| {
            PersonDoc::write_new(
                tx,
                &id,
                &"w-339901001001001".parse().unwrap(),
                Utc::now(),
                &person,
            )?;
            let tags = match tx.get(ROOT, "tags")? {
                Some((automerge::Value::Object(ObjType::Map), obj)) => obj,
                _ => panic!("a tags map"),
            };
            // Written by a later version, or a tampered one.
            tx.put(&tags, "elderly_alone", false)?;
            tx.put(&tags, "disabled", "yes")?;
            tx.put(&tags, "a_group_added_later", true)?;
            Ok(())
        })
        .unwrap();
        let read = PersonDoc::read(&doc, &id).unwrap();
        assert_eq!(read.tags, vec![Tag::LowIncome]);
        assert!(
            !format!("{read:?}").contains("张建国"),
            "Debug carries no name"
        );
        assert!(doc.length(&doc.get(ROOT, "tags").unwrap().unwrap().1) == 4);
    }
}
