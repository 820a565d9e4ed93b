//! The case document (网格事件): fields, photo references, notes and the
//! append-only timeline whose fold is the case's status.

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjType, ReadDoc, ScalarValue, ROOT};
use chrono::{DateTime, Utc};

use super::{
    child, list_maps, opt_bool, opt_f64, opt_i64, opt_str, push_map, put_root, read_root, req_list,
    req_parse, req_str, req_time, schema_err, time_value, Fields, SchemaError,
};
use crate::directory::Role;
use crate::ids::{CategoryCode, DocId, DocKind, PhotoHash, RegionCode, RegionLevel, UserId};
use crate::workflow::{Action, Entry, SupervisionLevel};

/// Limits on what one case may hold, checked before anything is written.
pub mod limits {
    /// Title, in characters.
    pub const TITLE: usize = 200;
    /// Description, in characters.
    pub const DESCRIPTION: usize = 5000;
    /// Address, in characters.
    pub const ADDRESS: usize = 200;
    /// One note, in characters.
    pub const NOTE: usize = 2000;
    /// A person's name, role or phone, in characters.
    pub const PERSON_FIELD: usize = 50;
    /// People involved.
    pub const PEOPLE: usize = 20;
    /// Photos attached.
    pub const PHOTOS: usize = 50;
    /// Notes.
    pub const NOTES: usize = 500;
    /// Timeline entries.
    pub const TIMELINE: usize = 500;
}

mod key {
    pub const CREATED: &str = "created";
    pub const REPORTER: &str = "reporter";
    pub const GRID: &str = "grid";
    pub const TITLE: &str = "title";
    pub const DESCRIPTION: &str = "description";
    pub const CATEGORY: &str = "category";
    pub const SUBCATEGORY: &str = "subcategory";
    pub const SEVERITY: &str = "severity";
    pub const LOCATION: &str = "location";
    pub const LAT: &str = "lat";
    pub const LON: &str = "lon";
    pub const ADDRESS: &str = "address";
    pub const PEOPLE: &str = "people";
    pub const PLACE: &str = "place";
    pub const PERSONS: &str = "persons";
    pub const NAME: &str = "name";
    pub const ROLE: &str = "role";
    pub const PHONE: &str = "phone";
    pub const PHOTOS: &str = "photos";
    pub const HASH: &str = "hash";
    pub const THUMB: &str = "thumb";
    pub const WIDTH: &str = "w";
    pub const HEIGHT: &str = "h";
    pub const BY: &str = "by";
    pub const AT: &str = "at";
    pub const NOTES: &str = "notes";
    pub const TEXT: &str = "text";
    pub const TIMELINE: &str = "timeline";
    pub const ENTRY_ID: &str = "id";
    pub const AFTER: &str = "after";
    pub const ACTION: &str = "action";
    pub const DEPT: &str = "dept";
    pub const DEADLINE: &str = "deadline";
    pub const LEVEL: &str = "level";
    pub const SUPERVISION: &str = "supervision";
    pub const PASSED: &str = "passed";
    pub const SATISFACTION: &str = "satisfaction";
    pub const CHANNEL: &str = "channel";
}

const KIND: &str = "case";

/// How serious a case is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// 低.
    Low,
    /// 一般.
    Normal,
    /// 紧急.
    High,
    /// 特急.
    Urgent,
}

impl Severity {
    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Normal => "normal",
            Severity::High => "high",
            Severity::Urgent => "urgent",
        }
    }

    /// Parse the stored name.
    pub fn parse(s: &str) -> Option<Severity> {
        [
            Severity::Low,
            Severity::Normal,
            Severity::High,
            Severity::Urgent,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// How a case came in (渠道). Written on the document only when it is not
/// [`Channel::Phone`], so a worker's report is the same document as before
/// channels existed, and an old document reads as one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Channel {
    /// A grid worker's phone (or the console, for a worker's kind of report).
    #[default]
    Phone,
    /// The public resident page on the relay (居民上报).
    Resident,
    /// The unified hotline, 12345, taken by a dispatcher.
    Hotline,
    /// A WeChat official account, entered by a dispatcher.
    Wechat,
    /// A website's message board, entered by a dispatcher.
    Website,
    /// A resident at the counter (来访), entered by a dispatcher.
    Visit,
    /// A channel this version does not know (a newer replica wrote it).
    Other,
}

impl Channel {
    /// Every channel a dispatcher may enter a resident's report under.
    pub const ENTERED: [Channel; 4] = [
        Channel::Hotline,
        Channel::Wechat,
        Channel::Website,
        Channel::Visit,
    ];

    /// Every channel this version knows, as lists show them.
    pub const KNOWN: [Channel; 6] = [
        Channel::Phone,
        Channel::Resident,
        Channel::Hotline,
        Channel::Wechat,
        Channel::Website,
        Channel::Visit,
    ];

    /// Stable lowercase name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Phone => "phone",
            Channel::Resident => "resident",
            Channel::Hotline => "hotline",
            Channel::Wechat => "wechat",
            Channel::Website => "website",
            Channel::Visit => "visit",
            Channel::Other => "other",
        }
    }

    /// Its name in Chinese.
    pub fn label_zh(self) -> &'static str {
        match self {
            Channel::Phone => "网格员上报",
            Channel::Resident => "居民上报",
            Channel::Hotline => "12345热线",
            Channel::Wechat => "微信公众号",
            Channel::Website => "网站留言",
            Channel::Visit => "来访",
            Channel::Other => "其他渠道",
        }
    }

    /// Parse a stored name; a name this version does not know is [`Channel::Other`].
    pub fn parse(s: &str) -> Channel {
        Channel::KNOWN
            .into_iter()
            .find(|c| c.as_str() == s)
            .unwrap_or(Channel::Other)
    }

    /// Whether a resident brought it, through whatever channel.
    pub fn from_resident(self) -> bool {
        !matches!(self, Channel::Phone)
    }
}

/// Where the problem is. Exact addresses and coordinates are personal data: they
/// live in the document and the local index, never in logs.
#[derive(Clone, Debug, PartialEq)]
pub struct Location {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
    /// Street address.
    pub address: String,
}

/// A person involved (当事人). Personal data.
#[derive(Clone, Debug, PartialEq)]
pub struct Person {
    /// Name.
    pub name: String,
    /// Role in the case (e.g. 业主, 租户).
    pub role: String,
    /// Phone number, may be empty.
    pub phone: String,
}

/// A photo attached to the case; the blob itself lives outside the document.
#[derive(Clone, Debug, PartialEq)]
pub struct PhotoRef {
    /// SHA-256 of the display image.
    pub hash: PhotoHash,
    /// SHA-256 of its thumbnail.
    pub thumb: Option<PhotoHash>,
    /// Width of the display image.
    pub width: u32,
    /// Height of the display image.
    pub height: u32,
    /// Who attached it.
    pub by: UserId,
    /// When.
    pub at: DateTime<Utc>,
}

/// A free-text note on the case.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    /// Who wrote it.
    pub by: UserId,
    /// When.
    pub at: DateTime<Utc>,
    /// The text.
    pub text: String,
}

/// What the app supplies to report a case.
#[derive(Clone, Debug, PartialEq)]
pub struct NewCase {
    /// Short title.
    pub title: String,
    /// What was found.
    pub description: String,
    /// Top-level category code from the taxonomy.
    pub category: CategoryCode,
    /// Subcategory code, if any.
    pub subcategory: Option<CategoryCode>,
    /// Severity.
    pub severity: Severity,
    /// The grid; a grid worker's own grid when `None`.
    pub grid: Option<RegionCode>,
    /// Where.
    pub location: Option<Location>,
    /// People involved.
    pub people: Vec<Person>,
    /// Photos already stored on the device.
    pub photos: Vec<PhotoHash>,
    /// The registered place and persons it concerns.
    pub links: CaseLinks,
}

/// What a case is about in the grid's base data: a registered place and persons,
/// by their documents' ids only. Their names, numbers and addresses stay in their
/// own documents (erased with them, ADR 0011) and are looked up by whoever may see
/// them; a department handler sees the ids and nothing more.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaseLinks {
    /// The place (a building, a flat, a shop …).
    pub place: Option<DocId>,
    /// The persons, at most [`limits::PEOPLE`].
    pub persons: Vec<DocId>,
}

/// The whole content of a case document.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseDoc {
    /// Document id.
    pub id: DocId,
    /// When it was reported.
    pub created: DateTime<Utc>,
    /// Who reported it.
    pub reporter: UserId,
    /// The grid it belongs to.
    pub grid: RegionCode,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Category.
    pub category: CategoryCode,
    /// Subcategory.
    pub subcategory: Option<CategoryCode>,
    /// Severity.
    pub severity: Severity,
    /// Location.
    pub location: Option<Location>,
    /// People involved.
    pub people: Vec<Person>,
    /// Photos.
    pub photos: Vec<PhotoRef>,
    /// Notes.
    pub notes: Vec<Note>,
    /// The timeline, in the order every replica agrees on.
    pub timeline: Vec<Entry>,
    /// The registered place and persons it concerns.
    pub links: CaseLinks,
    /// How it came in.
    pub channel: Channel,
}

/// A field of user input that breaks a limit or is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct FieldError {
    /// Which field.
    pub field: &'static str,
    /// What is wrong (never the content).
    pub reason: String,
}

fn check_text(field: &'static str, s: &str, max: usize, required: bool) -> Result<(), FieldError> {
    let n = s.chars().count();
    if required && s.trim().is_empty() {
        return Err(FieldError {
            field,
            reason: "is required".into(),
        });
    }
    if n > max {
        return Err(FieldError {
            field,
            reason: format!("is {n} characters; the limit is {max}"),
        });
    }
    Ok(())
}

/// Check a coordinate pair.
pub fn check_coordinates(lat: f64, lon: f64) -> Result<(), FieldError> {
    if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
        return Err(FieldError {
            field: "latitude",
            reason: "must be between -90 and 90".into(),
        });
    }
    if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
        return Err(FieldError {
            field: "longitude",
            reason: "must be between -180 and 180".into(),
        });
    }
    Ok(())
}

/// Check a note's text.
pub fn check_note(text: &str) -> Result<(), FieldError> {
    check_text("note", text, limits::NOTE, true)
}

impl NewCase {
    /// Check every field against its limit (the taxonomy is checked by the engine).
    pub fn validate(&self) -> Result<(), FieldError> {
        check_text("title", &self.title, limits::TITLE, true)?;
        check_text("description", &self.description, limits::DESCRIPTION, false)?;
        if let Some(loc) = &self.location {
            check_coordinates(loc.lat, loc.lon)?;
            check_text("address", &loc.address, limits::ADDRESS, false)?;
        }
        if self.people.len() > limits::PEOPLE {
            return Err(FieldError {
                field: "people",
                reason: format!("at most {} people", limits::PEOPLE),
            });
        }
        for p in &self.people {
            check_text("person name", &p.name, limits::PERSON_FIELD, true)?;
            check_text("person role", &p.role, limits::PERSON_FIELD, false)?;
            check_text("person phone", &p.phone, limits::PERSON_FIELD, false)?;
        }
        if self.photos.len() > limits::PHOTOS {
            return Err(FieldError {
                field: "photos",
                reason: format!("at most {} photos", limits::PHOTOS),
            });
        }
        self.links.validate()
    }
}

impl CaseLinks {
    /// Ids of the right kinds, each person once, within the limit.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self
            .place
            .as_ref()
            .is_some_and(|p| p.kind() != DocKind::Place)
        {
            return Err(FieldError {
                field: "place",
                reason: "not a place's id".into(),
            });
        }
        let mut seen = std::collections::HashSet::new();
        let persons_ok = self.persons.len() <= limits::PEOPLE
            && self
                .persons
                .iter()
                .all(|p| p.kind() == DocKind::Person && seen.insert(p));
        if !persons_ok {
            return Err(FieldError {
                field: "persons",
                reason: format!("at most {} different persons' ids", limits::PEOPLE),
            });
        }
        Ok(())
    }
}

impl CaseDoc {
    /// Build the content of a new case from the app's input and its first timeline entry.
    pub fn new(
        id: DocId,
        reporter: UserId,
        grid: RegionCode,
        input: NewCase,
        report: Entry,
    ) -> Self {
        CaseDoc {
            id,
            created: report.at,
            photos: input
                .photos
                .into_iter()
                .map(|hash| PhotoRef {
                    hash,
                    thumb: None,
                    width: 0,
                    height: 0,
                    by: reporter.clone(),
                    at: report.at,
                })
                .collect(),
            reporter,
            grid,
            title: input.title,
            description: input.description,
            category: input.category,
            subcategory: input.subcategory,
            severity: input.severity,
            location: input.location,
            people: input.people,
            notes: Vec::new(),
            timeline: vec![report],
            links: input.links,
            channel: Channel::Phone,
        }
    }

    /// Write a whole new case into an empty document.
    pub fn write_new<T: Transactable>(&self, tx: &mut T) -> Result<(), AutomergeError> {
        put_root(tx, KIND, &self.id)?;
        tx.put(ROOT, key::CREATED, time_value(self.created))?;
        tx.put(ROOT, key::REPORTER, self.reporter.as_str())?;
        tx.put(ROOT, key::GRID, self.grid.as_str())?;
        tx.put(ROOT, key::TITLE, self.title.as_str())?;
        tx.put(ROOT, key::DESCRIPTION, self.description.as_str())?;
        tx.put(ROOT, key::CATEGORY, self.category.as_str())?;
        if let Some(sub) = &self.subcategory {
            tx.put(ROOT, key::SUBCATEGORY, sub.as_str())?;
        }
        tx.put(ROOT, key::SEVERITY, self.severity.as_str())?;
        if let Some(loc) = &self.location {
            let obj = tx.put_object(ROOT, key::LOCATION, ObjType::Map)?;
            tx.put(&obj, key::LAT, loc.lat)?;
            tx.put(&obj, key::LON, loc.lon)?;
            tx.put(&obj, key::ADDRESS, loc.address.as_str())?;
        }
        let people = tx.put_object(ROOT, key::PEOPLE, ObjType::List)?;
        for p in &self.people {
            let obj = push_map(tx, &people)?;
            tx.put(&obj, key::NAME, p.name.as_str())?;
            tx.put(&obj, key::ROLE, p.role.as_str())?;
            tx.put(&obj, key::PHONE, p.phone.as_str())?;
        }
        // Written only when there are links: a case without them is the same
        // document as before links existed.
        if let Some(place) = &self.links.place {
            tx.put(ROOT, key::PLACE, place.as_str())?;
        }
        if self.channel != Channel::Phone {
            tx.put(ROOT, key::CHANNEL, self.channel.as_str())?;
        }
        if !self.links.persons.is_empty() {
            let persons = tx.put_object(ROOT, key::PERSONS, ObjType::List)?;
            for (i, p) in self.links.persons.iter().enumerate() {
                tx.insert(&persons, i, p.as_str())?;
            }
        }
        tx.put_object(ROOT, key::PHOTOS, ObjType::List)?;
        for photo in &self.photos {
            add_photo(tx, photo)?;
        }
        tx.put_object(ROOT, key::NOTES, ObjType::List)?;
        for note in &self.notes {
            add_note(tx, note)?;
        }
        tx.put_object(ROOT, key::TIMELINE, ObjType::List)?;
        for entry in &self.timeline {
            append_entry(tx, entry)?;
        }
        Ok(())
    }

    /// Read and validate a case document.
    pub fn read(doc: &impl ReadDoc, id: &DocId) -> Result<CaseDoc, SchemaError> {
        let root = read_root(doc, KIND, id)?;
        let location = match child(&root, key::LOCATION, ObjType::Map)? {
            Some(obj) => {
                let f = Fields::of(doc, &obj);
                Some(Location {
                    lat: opt_f64(&f, key::LAT)?.unwrap_or_default(),
                    lon: opt_f64(&f, key::LON)?.unwrap_or_default(),
                    address: opt_str(&f, key::ADDRESS)?.unwrap_or_default(),
                })
            }
            None => None,
        };
        let people = read_list(doc, &root, key::PEOPLE, limits::PEOPLE, |f| {
            Ok(Person {
                name: opt_str(f, key::NAME)?.unwrap_or_default(),
                role: opt_str(f, key::ROLE)?.unwrap_or_default(),
                phone: opt_str(f, key::PHONE)?.unwrap_or_default(),
            })
        })?;
        let photos = read_list(doc, &root, key::PHOTOS, limits::PHOTOS, |f| {
            let dim = |k: &str| -> Result<u32, SchemaError> {
                Ok(opt_i64(f, k)?
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(0))
            };
            let thumb = match opt_str(f, key::THUMB)? {
                Some(t) => Some(
                    t.parse()
                        .map_err(|_| schema_err(key::THUMB, "not a valid value"))?,
                ),
                None => None,
            };
            Ok(PhotoRef {
                hash: req_parse(f, key::HASH)?,
                thumb,
                width: dim(key::WIDTH)?,
                height: dim(key::HEIGHT)?,
                by: req_parse(f, key::BY)?,
                at: req_time(f, key::AT)?,
            })
        })?;
        let notes = read_list(doc, &root, key::NOTES, limits::NOTES, |f| {
            Ok(Note {
                by: req_parse(f, key::BY)?,
                at: req_time(f, key::AT)?,
                text: req_str(f, key::TEXT)?,
            })
        })?;
        let timeline = read_list(doc, &root, key::TIMELINE, limits::TIMELINE, read_entry)?;
        if timeline.is_empty() {
            return Err(schema_err(key::TIMELINE, "is empty"));
        }
        let subcategory = match opt_str(&root, key::SUBCATEGORY)? {
            Some(s) => Some(
                s.parse()
                    .map_err(|_| schema_err(key::SUBCATEGORY, "not a valid value"))?,
            ),
            None => None,
        };
        let links = CaseLinks {
            place: match opt_str(&root, key::PLACE)? {
                Some(p) => Some(
                    p.parse()
                        .map_err(|_| schema_err(key::PLACE, "not a valid value"))?,
                ),
                None => None,
            },
            persons: match child(&root, key::PERSONS, ObjType::List)? {
                Some(list) => {
                    if doc.length(&list) > limits::PEOPLE {
                        return Err(schema_err(key::PERSONS, "has more items than allowed"));
                    }
                    (0..doc.length(&list))
                        .map(|i| match doc.get(&list, i) {
                            Ok(Some((automerge::Value::Scalar(v), _))) => match v.as_ref() {
                                ScalarValue::Str(s) => s.parse().ok(),
                                _ => None,
                            },
                            _ => None,
                        })
                        .collect::<Option<Vec<DocId>>>()
                        .ok_or_else(|| schema_err(key::PERSONS, "not a valid value"))?
                }
                None => Vec::new(),
            },
        };
        links
            .validate()
            .map_err(|e| schema_err(e.field, "not valid"))?;
        Ok(CaseDoc {
            id: id.clone(),
            created: req_time(&root, key::CREATED)?,
            reporter: req_parse(&root, key::REPORTER)?,
            grid: req_parse(&root, key::GRID)?,
            title: req_str(&root, key::TITLE)?,
            description: opt_str(&root, key::DESCRIPTION)?.unwrap_or_default(),
            category: req_parse(&root, key::CATEGORY)?,
            subcategory,
            severity: Severity::parse(&req_str(&root, key::SEVERITY)?)
                .ok_or_else(|| schema_err(key::SEVERITY, "not a valid value"))?,
            location,
            people,
            photos,
            notes,
            timeline,
            links,
            channel: opt_str(&root, key::CHANNEL)?.map_or(Channel::Phone, |c| Channel::parse(&c)),
        })
    }

    /// The id of the last timeline entry: what a new entry is made `after`.
    pub fn last_entry_id(&self) -> Option<&str> {
        self.timeline.last().map(|e| e.id.as_str())
    }
}

/// The items of the root's list `field` (at most `max`, each a map), read by `read`.
fn read_list<T>(
    doc: &impl ReadDoc,
    root: &Fields,
    field: &'static str,
    max: usize,
    mut read: impl FnMut(&Fields) -> Result<T, SchemaError>,
) -> Result<Vec<T>, SchemaError> {
    let list = req_list(root, field)?;
    let items = list_maps(doc, &list, field)?;
    if items.len() > max {
        return Err(schema_err(field, "has more items than allowed"));
    }
    items
        .iter()
        .map(|obj| read(&Fields::of(doc, obj)))
        .collect()
}

/// Append a timeline entry.
pub fn append_entry<T: Transactable>(tx: &mut T, entry: &Entry) -> Result<(), AutomergeError> {
    let list = super::list_obj(tx, key::TIMELINE)?;
    let obj = push_map(tx, &list)?;
    tx.put(&obj, key::ENTRY_ID, entry.id.as_str())?;
    if let Some(after) = &entry.after {
        tx.put(&obj, key::AFTER, after.as_str())?;
    }
    tx.put(&obj, key::BY, entry.actor.as_str())?;
    tx.put(&obj, key::ROLE, entry.role.as_str())?;
    tx.put(&obj, key::AT, time_value(entry.at))?;
    tx.put(&obj, key::ACTION, entry.action.name())?;
    match &entry.action {
        Action::Report { level } => tx.put(&obj, key::LEVEL, level.as_str())?,
        Action::Accept | Action::Archive => {}
        Action::SelfHandle { result } | Action::Feedback { result } => {
            tx.put(&obj, key::TEXT, result.as_str())?
        }
        Action::Return { reason } | Action::Escalate { reason } | Action::Invalidate { reason } => {
            tx.put(&obj, key::TEXT, reason.as_str())?
        }
        Action::Dispatch { dept, deadline } => {
            tx.put(&obj, key::DEPT, dept.as_str())?;
            tx.put(&obj, key::DEADLINE, time_value(*deadline))?;
        }
        Action::Verify { passed, comment } => {
            tx.put(&obj, key::PASSED, *passed)?;
            tx.put(&obj, key::TEXT, comment.as_str())?;
        }
        Action::Evaluate {
            satisfaction,
            comment,
        } => {
            tx.put(&obj, key::SATISFACTION, i64::from(*satisfaction))?;
            tx.put(&obj, key::TEXT, comment.as_str())?;
        }
        Action::Urge { level, comment } => {
            tx.put(&obj, key::SUPERVISION, level.number())?;
            tx.put(&obj, key::TEXT, comment.as_str())?;
        }
    }
    Ok(())
}

fn read_entry(f: &Fields) -> Result<Entry, SchemaError> {
    let text = || -> Result<String, SchemaError> { Ok(opt_str(f, key::TEXT)?.unwrap_or_default()) };
    let name = req_str(f, key::ACTION)?;
    let action = match name.as_str() {
        "report" => Action::Report {
            level: req_parse::<RegionLevel>(f, key::LEVEL)?,
        },
        "accept" => Action::Accept,
        "archive" => Action::Archive,
        "self_handle" => Action::SelfHandle { result: text()? },
        "feedback" => Action::Feedback { result: text()? },
        "return" => Action::Return { reason: text()? },
        "escalate" => Action::Escalate { reason: text()? },
        "invalidate" => Action::Invalidate { reason: text()? },
        "dispatch" => Action::Dispatch {
            dept: req_parse(f, key::DEPT)?,
            deadline: req_time(f, key::DEADLINE)?,
        },
        "verify" => Action::Verify {
            passed: opt_bool(f, key::PASSED)?.ok_or_else(|| schema_err(key::PASSED, "missing"))?,
            comment: text()?,
        },
        "evaluate" => Action::Evaluate {
            satisfaction: opt_i64(f, key::SATISFACTION)?
                .and_then(|n| u8::try_from(n).ok())
                .ok_or_else(|| schema_err(key::SATISFACTION, "missing or out of range"))?,
            comment: text()?,
        },
        "urge" => Action::Urge {
            level: opt_i64(f, key::SUPERVISION)?
                .and_then(SupervisionLevel::from_number)
                .ok_or_else(|| schema_err(key::SUPERVISION, "missing or out of range"))?,
            comment: text()?,
        },
        _ => return Err(schema_err(key::ACTION, "unknown action")),
    };
    Ok(Entry {
        id: req_str(f, key::ENTRY_ID)?,
        after: opt_str(f, key::AFTER)?,
        actor: req_parse(f, key::BY)?,
        role: Role::parse(&req_str(f, key::ROLE)?)
            .ok_or_else(|| schema_err(key::ROLE, "unknown role"))?,
        at: req_time(f, key::AT)?,
        action,
    })
}

/// Append a photo reference.
pub fn add_photo<T: Transactable>(tx: &mut T, photo: &PhotoRef) -> Result<(), AutomergeError> {
    let list = super::list_obj(tx, key::PHOTOS)?;
    let obj = push_map(tx, &list)?;
    tx.put(&obj, key::HASH, photo.hash.as_str())?;
    if let Some(thumb) = &photo.thumb {
        tx.put(&obj, key::THUMB, thumb.as_str())?;
    }
    tx.put(&obj, key::WIDTH, i64::from(photo.width))?;
    tx.put(&obj, key::HEIGHT, i64::from(photo.height))?;
    tx.put(&obj, key::BY, photo.by.as_str())?;
    tx.put(&obj, key::AT, time_value(photo.at))?;
    Ok(())
}

/// Append a note.
pub fn add_note<T: Transactable>(tx: &mut T, note: &Note) -> Result<(), AutomergeError> {
    let list = super::list_obj(tx, key::NOTES)?;
    let obj = push_map(tx, &list)?;
    tx.put(&obj, key::BY, note.by.as_str())?;
    tx.put(&obj, key::AT, time_value(note.at))?;
    tx.put(&obj, key::TEXT, note.text.as_str())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::AutoCommit;

    fn case(channel: Channel) -> CaseDoc {
        let report = Entry {
            id: "e0".into(),
            after: None,
            actor: "cd-339901001001".parse().unwrap(),
            role: Role::CommunityDispatcher,
            at: DateTime::from_timestamp_millis(1_765_000_000_000).unwrap(),
            action: Action::Report {
                level: RegionLevel::Community,
            },
        };
        let input = NewCase {
            title: "路灯不亮".into(),
            description: "望湖小区南门路灯不亮".into(),
            category: "city".parse().unwrap(),
            subcategory: None,
            severity: Severity::Normal,
            grid: None,
            location: None,
            people: Vec::new(),
            photos: Vec::new(),
            links: CaseLinks::default(),
        };
        let mut c = CaseDoc::new(
            DocId::new(DocKind::Case),
            report.actor.clone(),
            "339901001001001".parse().unwrap(),
            input,
            report,
        );
        c.channel = channel;
        c
    }

    #[test]
    fn the_channel_is_written_only_when_not_the_phone() {
        for channel in [Channel::Phone, Channel::Resident, Channel::Hotline] {
            let c = case(channel);
            let mut doc = AutoCommit::new();
            c.write_new(&mut doc).unwrap();
            assert_eq!(
                doc.get(ROOT, key::CHANNEL).unwrap().is_some(),
                channel != Channel::Phone
            );
            assert_eq!(CaseDoc::read(&doc, &c.id).unwrap(), c);
        }
        // A channel a newer replica wrote still reads.
        let c = case(Channel::Phone);
        let mut doc = AutoCommit::new();
        c.write_new(&mut doc).unwrap();
        doc.put(ROOT, key::CHANNEL, "mini_program").unwrap();
        assert_eq!(CaseDoc::read(&doc, &c.id).unwrap().channel, Channel::Other);
    }
}
