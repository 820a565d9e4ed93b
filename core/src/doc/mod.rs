//! Typed access to the Automerge documents: one module per document kind. All the
//! key names live here; nothing outside this module touches a raw path.

pub mod adjustment;
pub mod case;
pub mod patrol;
pub mod place;
pub mod registry;

use std::collections::HashMap;

use automerge::transaction::Transactable;
use automerge::{hydrate, ObjId, ObjType, ReadDoc, ScalarValue, Value};
use chrono::{DateTime, Utc};

use crate::ids::{PhotoHash, UserId};

/// The typed content of any document.
#[derive(Clone, Debug, PartialEq)]
pub enum DocContent {
    /// A case.
    Case(case::CaseDoc),
    /// A patrol log.
    Patrol(patrol::PatrolDoc),
    /// A person of the grid's base data.
    Person(registry::PersonDoc),
    /// A household.
    Household(registry::HouseholdDoc),
    /// A place.
    Place(place::PlaceDoc),
    /// A manual points adjustment.
    Adjustment(adjustment::AdjustmentDoc),
}

/// A document's reference to another by id (see [`DocContent::references`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocRef<'a> {
    /// The document referred to.
    pub target: &'a crate::ids::DocId,
    /// Whether the target must be in the referring document's grid (a member's
    /// household, a household's head and dwelling, a case's place, a check-in's
    /// household or place); otherwise it need only be in the writer's scope (the
    /// building a place is within, an organisation's contact, a case's persons).
    pub same_grid: bool,
}

/// The photo taken at a visit or an inspection (at most one each): its display
/// image and thumbnail, files the phone that recorded it stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryPhoto {
    /// The display image's hash.
    pub hash: PhotoHash,
    /// Its thumbnail's hash.
    pub thumb: PhotoHash,
}

/// One photo file a document refers to: what the index keeps to upload, fetch,
/// evict and purge it, and what the relay checks a device may see or send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocPhoto<'a> {
    /// The file's hash.
    pub hash: &'a PhotoHash,
    /// Whether it is a thumbnail (else a display image).
    pub thumb: bool,
    /// Who attached it (or recorded the visit or inspection it belongs to).
    pub by: &'a UserId,
}

impl<'a> DocPhoto<'a> {
    /// A display image and, if it has one, its thumbnail.
    fn pair(
        hash: &'a PhotoHash,
        thumb: Option<&'a PhotoHash>,
        by: &'a UserId,
    ) -> impl Iterator<Item = DocPhoto<'a>> {
        std::iter::once(DocPhoto {
            hash,
            thumb: false,
            by,
        })
        .chain(thumb.map(|hash| DocPhoto {
            hash,
            thumb: true,
            by,
        }))
    }

    /// A visit's or an inspection's photo, if it has one.
    fn entry(photo: Option<&'a EntryPhoto>, by: &'a UserId) -> impl Iterator<Item = DocPhoto<'a>> {
        photo
            .into_iter()
            .flat_map(move |p| DocPhoto::pair(&p.hash, Some(&p.thumb), by))
    }
}

impl DocContent {
    /// Read and validate a document of the kind its id names.
    pub fn read(doc: &impl ReadDoc, id: &crate::ids::DocId) -> Result<DocContent, SchemaError> {
        Ok(match id.kind() {
            crate::ids::DocKind::Case => DocContent::Case(case::CaseDoc::read(doc, id)?),
            crate::ids::DocKind::Patrol => DocContent::Patrol(patrol::PatrolDoc::read(doc, id)?),
            crate::ids::DocKind::Person => DocContent::Person(registry::PersonDoc::read(doc, id)?),
            crate::ids::DocKind::Household => {
                DocContent::Household(registry::HouseholdDoc::read(doc, id)?)
            }
            crate::ids::DocKind::Place => DocContent::Place(place::PlaceDoc::read(doc, id)?),
            crate::ids::DocKind::Adjustment => {
                DocContent::Adjustment(adjustment::AdjustmentDoc::read(doc, id)?)
            }
        })
    }

    /// The document's id.
    pub fn id(&self) -> &crate::ids::DocId {
        match self {
            DocContent::Case(c) => &c.id,
            DocContent::Patrol(p) => &p.id,
            DocContent::Person(p) => &p.id,
            DocContent::Household(h) => &h.id,
            DocContent::Place(p) => &p.id,
            DocContent::Adjustment(a) => &a.id,
        }
    }

    /// Every photo file the document refers to: a case's photos, a household's
    /// visits' and a place's inspections' photos.
    pub fn photos(&self) -> Vec<DocPhoto<'_>> {
        match self {
            DocContent::Case(c) => c
                .photos
                .iter()
                .flat_map(|p| DocPhoto::pair(&p.hash, p.thumb.as_ref(), &p.by))
                .collect(),
            DocContent::Household(h) => h
                .visits
                .iter()
                .flat_map(|v| DocPhoto::entry(v.photo.as_ref(), &v.by))
                .collect(),
            DocContent::Place(p) => p
                .inspections
                .iter()
                .flat_map(|i| DocPhoto::entry(i.photo.as_ref(), &i.by))
                .collect(),
            DocContent::Patrol(_) | DocContent::Person(_) | DocContent::Adjustment(_) => Vec::new(),
        }
    }

    /// Every other document this one refers to by id.
    pub fn references(&self) -> Vec<DocRef<'_>> {
        let same = |target| DocRef {
            target,
            same_grid: true,
        };
        let scope = |target| DocRef {
            target,
            same_grid: false,
        };
        match self {
            DocContent::Case(c) => {
                let place = c.links.place.iter().map(same);
                place.chain(c.links.persons.iter().map(scope)).collect()
            }
            DocContent::Patrol(p) => p
                .checkins
                .iter()
                .flat_map(|c| c.household.iter().chain(&c.place_id))
                .map(same)
                .collect(),
            DocContent::Person(p) => p.household.iter().map(|(h, _)| same(h)).collect(),
            DocContent::Household(h) => h.head.iter().chain(&h.place).map(same).collect(),
            DocContent::Place(p) => {
                let contact = p.org.as_ref().and_then(|o| o.contact.as_ref());
                p.within.iter().chain(contact).map(scope).collect()
            }
            DocContent::Adjustment(_) => Vec::new(),
        }
    }

    /// The grid the document belongs to: who may see it starts from here.
    pub fn grid(&self) -> &crate::ids::RegionCode {
        match self {
            DocContent::Case(c) => &c.grid,
            DocContent::Patrol(p) => &p.grid,
            DocContent::Person(p) => &p.grid,
            DocContent::Household(h) => &h.grid,
            DocContent::Place(p) => &p.grid,
            DocContent::Adjustment(a) => &a.grid,
        }
    }
}

/// A document that does not have the shape its kind requires (e.g. a change from a
/// buggy or hostile replica). The message names the field, never its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("document field {field}: {reason}")]
pub struct SchemaError {
    /// The field path.
    pub field: String,
    /// What is wrong.
    pub reason: &'static str,
}

fn schema_err(field: &str, reason: &'static str) -> SchemaError {
    SchemaError {
        field: field.to_owned(),
        reason,
    }
}

/// Whether `text` (the value of `field`, entered by a person) is within `max`
/// characters and, when `required`, not blank. The message names the field, never
/// its content.
pub(crate) fn check_len(
    field: &'static str,
    text: &str,
    max: usize,
    required: bool,
) -> Result<(), String> {
    let n = text.chars().count();
    if required && text.trim().is_empty() {
        return Err(format!("{field} is required"));
    }
    if n > max {
        return Err(format!("{field} is {n} characters; at most {max}"));
    }
    Ok(())
}

/// Version of the document layout written by this code.
pub const SCHEMA_VERSION: i64 = 1;

/// Common root keys.
mod key {
    pub const KIND: &str = "kind";
    pub const SCHEMA: &str = "schema";
    pub const ID: &str = "id";
    pub const PHOTO: &str = "photo";
    pub const THUMB: &str = "thumb";
}

/// The fields of one map object of a document, read in one pass over the map.
/// Reading field by field (`ReadDoc::get`) seeks the document's op columns anew
/// for every field: a case read that way cost about six times as much, and
/// reading cases was most of importing them (`docs/performance.md`, "Sync").
pub(crate) struct Fields {
    items: Vec<(String, Value<'static>, Option<ObjId>)>,
}

impl Fields {
    /// The fields of the map `obj` (none if it is not a map).
    pub(crate) fn of(doc: &impl ReadDoc, obj: &ObjId) -> Fields {
        let items = doc
            .map_range(obj, ..)
            .map(|item| {
                let id = matches!(item.value, automerge::ValueRef::Object(_)).then(|| item.id());
                (item.key.into_owned(), item.value.into_value(), id)
            })
            .collect();
        Fields { items }
    }

    fn get(&self, key: &str) -> Option<(&Value<'static>, Option<&ObjId>)> {
        self.items
            .iter()
            .find(|(k, ..)| k == key)
            .map(|(_, v, id)| (v, id.as_ref()))
    }
}

fn scalar<'f>(f: &'f Fields, key: &str) -> Result<Option<&'f ScalarValue>, SchemaError> {
    match f.get(key) {
        Some((Value::Scalar(v), _)) => Ok(Some(v.as_ref())),
        Some((Value::Object(_), _)) => Err(schema_err(key, "expected a value, found an object")),
        None => Ok(None),
    }
}

fn opt_str(f: &Fields, key: &str) -> Result<Option<String>, SchemaError> {
    match scalar(f, key)? {
        Some(ScalarValue::Str(s)) => Ok(Some(s.to_string())),
        Some(_) => Err(schema_err(key, "expected a string")),
        None => Ok(None),
    }
}

fn req_str(f: &Fields, key: &str) -> Result<String, SchemaError> {
    opt_str(f, key)?.ok_or_else(|| schema_err(key, "missing"))
}

fn req_parse<T: std::str::FromStr>(f: &Fields, key: &str) -> Result<T, SchemaError> {
    req_str(f, key)?
        .parse()
        .map_err(|_| schema_err(key, "not a valid value"))
}

fn opt_i64(f: &Fields, key: &str) -> Result<Option<i64>, SchemaError> {
    match scalar(f, key)? {
        Some(ScalarValue::Int(n)) | Some(ScalarValue::Timestamp(n)) => Ok(Some(*n)),
        Some(ScalarValue::Uint(n)) => i64::try_from(*n)
            .map(Some)
            .map_err(|_| schema_err(key, "number out of range")),
        Some(_) => Err(schema_err(key, "expected a number")),
        None => Ok(None),
    }
}

fn opt_f64(f: &Fields, key: &str) -> Result<Option<f64>, SchemaError> {
    match scalar(f, key)? {
        Some(ScalarValue::F64(n)) => Ok(Some(*n)),
        Some(ScalarValue::Int(n)) => Ok(Some(*n as f64)),
        Some(_) => Err(schema_err(key, "expected a number")),
        None => Ok(None),
    }
}

fn opt_bool(f: &Fields, key: &str) -> Result<Option<bool>, SchemaError> {
    match scalar(f, key)? {
        Some(ScalarValue::Boolean(b)) => Ok(Some(*b)),
        Some(_) => Err(schema_err(key, "expected a boolean")),
        None => Ok(None),
    }
}

fn opt_time(f: &Fields, key: &str) -> Result<Option<DateTime<Utc>>, SchemaError> {
    opt_i64(f, key)?
        .map(|ms| DateTime::from_timestamp_millis(ms).ok_or_else(|| schema_err(key, "bad time")))
        .transpose()
}

fn req_time(f: &Fields, key: &str) -> Result<DateTime<Utc>, SchemaError> {
    opt_time(f, key)?.ok_or_else(|| schema_err(key, "missing"))
}

fn child(f: &Fields, key: &str, want: ObjType) -> Result<Option<ObjId>, SchemaError> {
    match f.get(key) {
        Some((Value::Object(t), Some(id))) if *t == want => Ok(Some(id.clone())),
        Some(_) => Err(schema_err(key, "has the wrong type")),
        None => Ok(None),
    }
}

fn req_list(f: &Fields, key: &str) -> Result<ObjId, SchemaError> {
    child(f, key, ObjType::List)?.ok_or_else(|| schema_err(key, "missing"))
}

/// The map objects of a list, in list order; anything else in the list is a schema error.
fn list_maps(doc: &impl ReadDoc, list: &ObjId, field: &str) -> Result<Vec<ObjId>, SchemaError> {
    (0..doc.length(list))
        .map(|i| match doc.get(list, i) {
            Ok(Some((Value::Object(ObjType::Map), id))) => Ok(id),
            _ => Err(schema_err(field, "list item is not a map")),
        })
        .collect()
}

/// The root's fields, once they say the document is `id`, of `kind`, in this
/// schema version.
fn read_root(
    doc: &impl ReadDoc,
    kind: &str,
    id: &crate::ids::DocId,
) -> Result<Fields, SchemaError> {
    let root = Fields::of(doc, &automerge::ROOT);
    if req_str(&root, key::KIND)? != kind {
        return Err(schema_err(key::KIND, "does not match the document id"));
    }
    if req_str(&root, key::ID)? != id.as_str() {
        return Err(schema_err(key::ID, "does not match the document id"));
    }
    match opt_i64(&root, key::SCHEMA)? {
        Some(SCHEMA_VERSION) => Ok(root),
        _ => Err(schema_err(key::SCHEMA, "unsupported schema version")),
    }
}

/// The fields every document's root carries: its kind, schema version and id.
fn root_fields(kind: &str, id: &crate::ids::DocId) -> [(&'static str, ScalarValue); 3] {
    [
        (key::KIND, kind.into()),
        (key::SCHEMA, SCHEMA_VERSION.into()),
        (key::ID, id.as_str().into()),
    ]
}

fn put_root<T: Transactable>(
    tx: &mut T,
    kind: &str,
    id: &crate::ids::DocId,
) -> Result<(), automerge::AutomergeError> {
    for (k, v) in root_fields(kind, id) {
        tx.put(automerge::ROOT, k, v)?;
    }
    Ok(())
}

/// A map built in memory and written in one batch: Automerge splices a batch's
/// operations into its op set together, where `put` splices once per field —
/// most of a report's CPU time when a case was written a field at a time.
#[derive(Debug, Default)]
struct Batch(HashMap<&'static str, hydrate::Value>);

impl Batch {
    /// A document's root: its kind, schema version and id.
    fn root(kind: &str, id: &crate::ids::DocId) -> Self {
        let mut b = Batch::default();
        for (k, v) in root_fields(kind, id) {
            b.put(k, v);
        }
        b
    }

    fn put(&mut self, key: &'static str, value: impl Into<ScalarValue>) {
        self.0.insert(key, hydrate::Value::Scalar(value.into()));
    }

    fn put_opt(&mut self, key: &'static str, value: Option<impl Into<ScalarValue>>) {
        if let Some(v) = value {
            self.put(key, v);
        }
    }

    fn put_map(&mut self, key: &'static str, map: Batch) {
        self.0.insert(key, map.into_value());
    }

    fn put_list(&mut self, key: &'static str, items: Vec<hydrate::Value>) {
        self.0.insert(key, items.into());
    }

    fn into_value(self) -> hydrate::Value {
        hydrate::Value::Map(self.0.into())
    }

    /// Write this map as the root of an empty document.
    fn write_root<T: Transactable>(self, tx: &mut T) -> Result<(), automerge::AutomergeError> {
        tx.init_root_from_hydrate(&self.0.into())
    }

    /// Append this map to the end of the root-level list `field`.
    fn append_to<T: Transactable>(
        self,
        tx: &mut T,
        field: &str,
    ) -> Result<(), automerge::AutomergeError> {
        let list = list_obj(tx, field)?;
        let len = tx.length(&list);
        tx.batch_create_object(&list, len, &self.into_value(), true)?;
        Ok(())
    }
}

fn time_value(t: DateTime<Utc>) -> ScalarValue {
    ScalarValue::Timestamp(t.timestamp_millis())
}

/// Write a visit's or an inspection's photo, if it has one, into its map.
fn put_entry_photo<T: Transactable>(
    tx: &mut T,
    obj: &ObjId,
    photo: Option<&EntryPhoto>,
) -> Result<(), automerge::AutomergeError> {
    if let Some(p) = photo {
        tx.put(obj, key::PHOTO, p.hash.as_str())?;
        tx.put(obj, key::THUMB, p.thumb.as_str())?;
    }
    Ok(())
}

/// A visit's or an inspection's photo: both files named, or neither.
fn read_entry_photo(f: &Fields) -> Result<Option<EntryPhoto>, SchemaError> {
    let parse = |k: &str, v: String| {
        v.parse::<PhotoHash>()
            .map_err(|_| schema_err(k, "not a photo's hash"))
    };
    match (opt_str(f, key::PHOTO)?, opt_str(f, key::THUMB)?) {
        (None, None) => Ok(None),
        (Some(hash), Some(thumb)) => Ok(Some(EntryPhoto {
            hash: parse(key::PHOTO, hash)?,
            thumb: parse(key::THUMB, thumb)?,
        })),
        _ => Err(schema_err(
            key::PHOTO,
            "needs both its display image and its thumbnail",
        )),
    }
}

/// Append a new map to the end of `list` and return it.
fn push_map<T: Transactable>(tx: &mut T, list: &ObjId) -> Result<ObjId, automerge::AutomergeError> {
    let len = tx.length(list);
    tx.insert_object(list, len, ObjType::Map)
}

/// A root-level list to append to; its absence means the document is not ours.
/// One field, so read alone: a write reads no more of the document than it must.
fn list_obj<T: Transactable>(tx: &T, field: &str) -> Result<ObjId, automerge::AutomergeError> {
    match tx.get(automerge::ROOT, field) {
        Ok(Some((Value::Object(ObjType::List), id))) => Ok(id),
        _ => Err(automerge::AutomergeError::InvalidObjId(field.into())),
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{ActorId, AutoCommit, ObjType, ReadDoc, ROOT};

    use super::{child, opt_str, Fields};

    /// Read in one pass, a field that two replicas set concurrently has the value
    /// a lookup of that one field gives: the same winner on every replica.
    #[test]
    fn fields_read_in_one_pass_agree_with_lookups_on_conflicts() {
        let mut a = AutoCommit::new().with_actor(ActorId::from(&[1u8; 16][..]));
        a.put(ROOT, "title", "first").unwrap();
        let inner = a.put_object(ROOT, "location", ObjType::Map).unwrap();
        a.put(&inner, "address", "望湖小区3号楼").unwrap();
        let mut b = a.fork().with_actor(ActorId::from(&[2u8; 16][..]));
        a.put(ROOT, "title", "甲的标题").unwrap();
        a.put(&inner, "address", "甲").unwrap();
        b.put(ROOT, "title", "乙的标题").unwrap();
        b.put(&inner, "address", "乙").unwrap();
        b.put(ROOT, "only_b", "b").unwrap();
        a.merge(&mut b).unwrap();
        b.merge(&mut a).unwrap();
        for doc in [&a, &b] {
            let root = Fields::of(doc, &ROOT);
            let looked_up = |obj: &automerge::ObjId, key: &str| match doc.get(obj, key).unwrap() {
                Some((automerge::Value::Scalar(v), _)) => v.as_str().map(str::to_owned),
                _ => None,
            };
            assert_eq!(opt_str(&root, "title").unwrap(), looked_up(&ROOT, "title"));
            assert_eq!(opt_str(&root, "only_b").unwrap().as_deref(), Some("b"));
            let obj = child(&root, "location", ObjType::Map).unwrap().unwrap();
            assert_eq!(obj, inner);
            let location = Fields::of(doc, &obj);
            assert_eq!(
                opt_str(&location, "address").unwrap(),
                looked_up(&obj, "address")
            );
            assert!(
                child(&root, "title", ObjType::Map).is_err(),
                "a value, not a map"
            );
        }
        assert_eq!(
            opt_str(&Fields::of(&a, &ROOT), "title").unwrap(),
            opt_str(&Fields::of(&b, &ROOT), "title").unwrap()
        );
    }
}
