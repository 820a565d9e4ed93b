//! The case document (网格事件): fields, photo references, notes and the
//! append-only timeline whose fold is the case's status.

use automerge::hydrate::Value;
use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjType, ReadDoc, ScalarValue};
use chrono::{DateTime, Utc};

use super::{
    child, list_maps, opt_bool, opt_f64, opt_i64, opt_str, read_root, req_list, req_parse, req_str,
    req_time, schema_err, time_value, Batch, Fields, SchemaError,
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

    /// Write a whole new case into an empty document, in one batch.
    pub fn write_new<T: Transactable>(&self, tx: &mut T) -> Result<(), AutomergeError> {
        let mut root = Batch::root(KIND, &self.id);
        root.put(key::CREATED, time_value(self.created));
        root.put(key::REPORTER, self.reporter.as_str());
        root.put(key::GRID, self.grid.as_str());
        root.put(key::TITLE, self.title.as_str());
        root.put(key::DESCRIPTION, self.description.as_str());
        root.put(key::CATEGORY, self.category.as_str());
        root.put_opt(
            key::SUBCATEGORY,
            self.subcategory.as_ref().map(|s| s.as_str()),
        );
        root.put(key::SEVERITY, self.severity.as_str());
        if let Some(loc) = &self.location {
            let mut obj = Batch::default();
            obj.put(key::LAT, loc.lat);
            obj.put(key::LON, loc.lon);
            obj.put(key::ADDRESS, loc.address.as_str());
            root.put_map(key::LOCATION, obj);
        }
        let people = self.people.iter().map(|p| {
            let mut obj = Batch::default();
            obj.put(key::NAME, p.name.as_str());
            obj.put(key::ROLE, p.role.as_str());
            obj.put(key::PHONE, p.phone.as_str());
            obj.into_value()
        });
        root.put_list(key::PEOPLE, people.collect());
        // Written only when there are links: a case without them is the same
        // document as before links existed.
        root.put_opt(key::PLACE, self.links.place.as_ref().map(|p| p.as_str()));
        if self.channel != Channel::Phone {
            root.put(key::CHANNEL, self.channel.as_str());
        }
        if !self.links.persons.is_empty() {
            let persons = self.links.persons.iter().map(|p| Value::scalar(p.as_str()));
            root.put_list(key::PERSONS, persons.collect());
        }
        let photos = self.photos.iter().map(|p| photo_map(p).into_value());
        root.put_list(key::PHOTOS, photos.collect());
        let notes = self.notes.iter().map(|n| note_map(n).into_value());
        root.put_list(key::NOTES, notes.collect());
        let timeline = self.timeline.iter().map(|e| entry_map(e).into_value());
        root.put_list(key::TIMELINE, timeline.collect());
        root.write_root(tx)
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
    entry_map(entry).append_to(tx, key::TIMELINE)
}

/// A timeline entry as the map the document holds.
fn entry_map(entry: &Entry) -> Batch {
    let mut obj = Batch::default();
    obj.put(key::ENTRY_ID, entry.id.as_str());
    obj.put_opt(key::AFTER, entry.after.as_deref());
    obj.put(key::BY, entry.actor.as_str());
    obj.put(key::ROLE, entry.role.as_str());
    obj.put(key::AT, time_value(entry.at));
    obj.put(key::ACTION, entry.action.name());
    match &entry.action {
        Action::Report { level } => obj.put(key::LEVEL, level.as_str()),
        Action::Accept | Action::Archive => {}
        Action::SelfHandle { result } | Action::Feedback { result } => {
            obj.put(key::TEXT, result.as_str())
        }
        Action::Return { reason } | Action::Escalate { reason } | Action::Invalidate { reason } => {
            obj.put(key::TEXT, reason.as_str())
        }
        Action::Dispatch { dept, deadline } => {
            obj.put(key::DEPT, dept.as_str());
            obj.put(key::DEADLINE, time_value(*deadline));
        }
        Action::Verify { passed, comment } => {
            obj.put(key::PASSED, *passed);
            obj.put(key::TEXT, comment.as_str());
        }
        Action::Evaluate {
            satisfaction,
            comment,
        } => {
            obj.put(key::SATISFACTION, i64::from(*satisfaction));
            obj.put(key::TEXT, comment.as_str());
        }
        Action::Urge { level, comment } => {
            obj.put(key::SUPERVISION, level.number());
            obj.put(key::TEXT, comment.as_str());
        }
    }
    obj
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
    photo_map(photo).append_to(tx, key::PHOTOS)
}

fn photo_map(photo: &PhotoRef) -> Batch {
    let mut obj = Batch::default();
    obj.put(key::HASH, photo.hash.as_str());
    obj.put_opt(key::THUMB, photo.thumb.as_ref().map(|t| t.as_str()));
    obj.put(key::WIDTH, i64::from(photo.width));
    obj.put(key::HEIGHT, i64::from(photo.height));
    obj.put(key::BY, photo.by.as_str());
    obj.put(key::AT, time_value(photo.at));
    obj
}

/// Append a note.
pub fn add_note<T: Transactable>(tx: &mut T, note: &Note) -> Result<(), AutomergeError> {
    note_map(note).append_to(tx, key::NOTES)
}

fn note_map(note: &Note) -> Batch {
    let mut obj = Batch::default();
    obj.put(key::BY, note.by.as_str());
    obj.put(key::AT, time_value(note.at));
    obj.put(key::TEXT, note.text.as_str());
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::{AutoCommit, ROOT};

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

    /// Written in batches (the whole case, then each appended entry, note and
    /// photo), every part reads back as it was written, and appends made on two
    /// replicas at once both survive the merge, in the same order on each.
    #[test]
    fn a_case_written_in_batches_reads_back_whole_and_merges() {
        let at = |ms: i64| DateTime::from_timestamp_millis(1_765_000_000_000 + ms).unwrap();
        let hash = |c: char| c.to_string().repeat(64).parse::<PhotoHash>().unwrap();
        let worker: UserId = "gw-339901001001001".parse().unwrap();
        let mut c = case(Channel::Hotline);
        c.subcategory = Some("city.street_light".parse().unwrap());
        c.location = Some(Location {
            lat: 30.27,
            lon: 120.15,
            address: "望湖小区南门".into(),
        });
        c.people = vec![Person {
            name: "张三".into(),
            role: "住户".into(),
            phone: "13800000000".into(),
        }];
        c.links = CaseLinks {
            place: Some(DocId::new(DocKind::Place)),
            persons: vec![DocId::new(DocKind::Person), DocId::new(DocKind::Person)],
        };
        c.photos = vec![
            PhotoRef {
                hash: hash('a'),
                thumb: Some(hash('b')),
                width: 1600,
                height: 1200,
                by: worker.clone(),
                at: at(1),
            },
            PhotoRef {
                hash: hash('c'),
                thumb: None,
                width: 0,
                height: 0,
                by: worker.clone(),
                at: at(2),
            },
        ];
        c.notes = vec![Note {
            by: worker.clone(),
            at: at(3),
            text: "已电话联系".into(),
        }];
        let actions = [
            Action::Accept,
            Action::Dispatch {
                dept: "water".parse().unwrap(),
                deadline: at(86_400_000),
            },
            Action::Feedback {
                result: "已修复".into(),
            },
            Action::Verify {
                passed: false,
                comment: "仍不亮".into(),
            },
            Action::Urge {
                level: SupervisionLevel::OnSite,
                comment: "尽快".into(),
            },
            Action::Evaluate {
                satisfaction: 4,
                comment: "满意".into(),
            },
        ];
        for (i, action) in actions.into_iter().enumerate() {
            let before = c.timeline.last().map(|e| e.id.clone());
            c.timeline.push(Entry {
                id: format!("e{}", i + 1),
                after: before,
                actor: worker.clone(),
                role: Role::GridWorker,
                at: at(10 + i as i64),
                action,
            });
        }
        let mut doc = AutoCommit::new();
        c.write_new(&mut doc).unwrap();
        assert_eq!(CaseDoc::read(&doc, &c.id).unwrap(), c);

        let mut other = doc.fork().with_actor(automerge::ActorId::random());
        let note = |text: &str| Note {
            by: worker.clone(),
            at: at(100),
            text: text.into(),
        };
        let entry = |id: &str| Entry {
            id: id.into(),
            after: Some("e6".into()),
            actor: worker.clone(),
            role: Role::GridWorker,
            at: at(100),
            action: Action::Archive,
        };
        append_entry(&mut doc, &entry("mine")).unwrap();
        add_note(&mut doc, &note("甲")).unwrap();
        add_photo(&mut doc, &c.photos[1]).unwrap();
        append_entry(&mut other, &entry("theirs")).unwrap();
        add_note(&mut other, &note("乙")).unwrap();
        doc.merge(&mut other).unwrap();
        other.merge(&mut doc).unwrap();
        let (a, b) = (
            CaseDoc::read(&doc, &c.id).unwrap(),
            CaseDoc::read(&other, &c.id).unwrap(),
        );
        assert_eq!(a, b);
        assert_eq!(a.timeline[..c.timeline.len()], c.timeline[..]);
        let mut ids: Vec<&str> = a.timeline[c.timeline.len()..]
            .iter()
            .map(|e| e.id.as_str())
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, ["mine", "theirs"]);
        assert_eq!(a.notes.len(), 3);
        assert_eq!(a.photos.len(), 3);
        assert_eq!(a.photos[2], c.photos[1]);
    }
}
