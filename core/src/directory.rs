//! Reference data: the region tree, departments, users and roles, the case
//! taxonomy and deadline rules. Server-authoritative; for now loaded from a JSON
//! file (format documented in `docs/directory-format.md`).

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::doc::case::Severity;
use crate::doc::registry::Tag;
use crate::ids::{CategoryCode, DeptId, RegionCode, RegionLevel, UserId};

/// Largest directory file accepted (a city of 15,000 grids fits in a few MB).
pub const MAX_DIRECTORY_BYTES: usize = 32 * 1024 * 1024;

const FORMAT: &str = "gridsync-directory";
const VERSION: u32 = 1;

/// Why a directory file was refused. Messages name the offending code or id, never
/// a person's name.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The JSON could not be parsed into the documented shape.
    #[error("directory is not valid JSON of the documented format: {0}")]
    Parse(#[from] serde_json::Error),
    /// The file is larger than [`MAX_DIRECTORY_BYTES`].
    #[error("directory file is {0} bytes; the limit is {MAX_DIRECTORY_BYTES}")]
    TooLarge(usize),
    /// Parsed, but the content is inconsistent.
    #[error("directory is inconsistent: {0}")]
    Invalid(String),
}

/// A user's role; decides which workflow actions they may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 网格员: patrols one grid, reports and verifies cases.
    GridWorker,
    /// 社区 dispatcher.
    CommunityDispatcher,
    /// 街道 / 镇 dispatcher.
    TownDispatcher,
    /// 区 / 县 dispatcher.
    DistrictDispatcher,
    /// 市 dispatcher: the top of a directory that spans several districts.
    CityDispatcher,
    /// Handler in a department; handles what is dispatched to it.
    DepartmentHandler,
    /// May do everything within their region.
    Admin,
}

impl Role {
    /// The level of the region tree a dispatcher works at; `None` for other roles.
    pub fn dispatch_level(self) -> Option<RegionLevel> {
        match self {
            Role::CommunityDispatcher => Some(RegionLevel::Community),
            Role::TownDispatcher => Some(RegionLevel::Town),
            Role::DistrictDispatcher => Some(RegionLevel::District),
            Role::CityDispatcher | Role::Admin => Some(RegionLevel::City),
            Role::GridWorker | Role::DepartmentHandler => None,
        }
    }

    /// Whether this is one of the dispatcher roles (admin included).
    pub fn is_dispatcher(self) -> bool {
        self.dispatch_level().is_some()
    }

    /// Stable snake_case name, as stored in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::GridWorker => "grid_worker",
            Role::CommunityDispatcher => "community_dispatcher",
            Role::TownDispatcher => "town_dispatcher",
            Role::DistrictDispatcher => "district_dispatcher",
            Role::CityDispatcher => "city_dispatcher",
            Role::DepartmentHandler => "department_handler",
            Role::Admin => "admin",
        }
    }

    /// The Chinese label shown to people.
    pub fn label_zh(self) -> &'static str {
        match self {
            Role::GridWorker => "网格员",
            Role::CommunityDispatcher => "社区调度员",
            Role::TownDispatcher => "街道调度员",
            Role::DistrictDispatcher => "区调度员",
            Role::CityDispatcher => "市调度员",
            Role::DepartmentHandler => "部门处置员",
            Role::Admin => "管理员",
        }
    }

    /// Parse the stored name.
    pub fn parse(s: &str) -> Option<Role> {
        [
            Role::GridWorker,
            Role::CommunityDispatcher,
            Role::TownDispatcher,
            Role::DistrictDispatcher,
            Role::CityDispatcher,
            Role::DepartmentHandler,
            Role::Admin,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// The region level a user of this role must be placed at, if fixed.
    fn home_level(self) -> Option<RegionLevel> {
        match self {
            Role::GridWorker => Some(RegionLevel::Grid),
            Role::CommunityDispatcher => Some(RegionLevel::Community),
            Role::TownDispatcher => Some(RegionLevel::Town),
            Role::DistrictDispatcher => Some(RegionLevel::District),
            Role::CityDispatcher => Some(RegionLevel::City),
            Role::DepartmentHandler | Role::Admin => None,
        }
    }
}

/// A node of the region tree.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// Code; its prefix is the parent's code.
    pub code: RegionCode,
    /// Display name (Chinese).
    pub name: String,
    /// Level; must agree with the code's length.
    pub level: RegionLevel,
    /// Its boundary: one ring of `[lon, lat]` points in WGS-84 (GeoJSON's order;
    /// the ring closes itself, the first point is not repeated). Grids with one
    /// are where a resident's report at a position lands; the console draws them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boundary: Option<Vec<[f64; 2]>>,
}

/// Most points in one region's boundary.
pub const MAX_BOUNDARY_POINTS: usize = 2_000;

impl Region {
    /// Whether the point lies within the region's boundary (false without one).
    /// Even-odd ray casting: a point exactly on an edge may fall either side.
    pub fn contains_point(&self, lat: f64, lon: f64) -> bool {
        let Some(ring) = &self.boundary else {
            return false;
        };
        let mut inside = false;
        let mut j = ring.len() - 1;
        for (i, &[xi, yi]) in ring.iter().enumerate() {
            let [xj, yj] = ring[j];
            if (yi > lat) != (yj > lat) && lon < (xj - xi) * (lat - yi) / (yj - yi) + xi {
                inside = !inside;
            }
            j = i;
        }
        inside
    }
}

/// Whether a boundary is one ring of 3 to [`MAX_BOUNDARY_POINTS`] valid WGS-84
/// points.
fn check_boundary(code: &RegionCode, ring: &[[f64; 2]]) -> Result<(), DirectoryError> {
    if !(3..=MAX_BOUNDARY_POINTS).contains(&ring.len()) {
        return Err(invalid(format!(
            "region {code}: a boundary has 3 to {MAX_BOUNDARY_POINTS} points"
        )));
    }
    let valid = |&[lon, lat]: &[f64; 2]| {
        lon.is_finite()
            && lat.is_finite()
            && (-180.0..=180.0).contains(&lon)
            && (-90.0..=90.0).contains(&lat)
    };
    if let Some(i) = ring.iter().position(|p| !valid(p)) {
        return Err(invalid(format!(
            "region {code}: boundary point {} is not a [longitude, latitude] pair in range",
            i + 1
        )));
    }
    Ok(())
}

/// A department cases can be dispatched to.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Department {
    /// Short id.
    pub id: DeptId,
    /// Display name.
    pub name: String,
    /// The region whose cases it handles.
    pub region: RegionCode,
}

/// A user: a grid worker, dispatcher, handler or admin.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Display name. Personal data: never logged.
    pub name: String,
    /// What they may do.
    pub role: Role,
    /// Where they work: a grid worker's grid, a dispatcher's community/town/district.
    pub region: RegionCode,
    /// For department handlers: their department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<DeptId>,
    /// Where the relay's message gateway reaches them (a work phone number or a
    /// messaging id; see `docs/notifications.md`). Personal data: never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

/// The most characters of a user's `contact`.
pub const MAX_CONTACT_CHARS: usize = 64;

/// The shortest retention a category may have: a typo ("3" for "365") must not
/// erase a category's closed cases within the hour.
pub const MIN_RETENTION_DAYS: u32 = 30;

/// The longest retention a category may have (a hundred years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// A subcategory of the taxonomy.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subcategory {
    /// `<category>.<name>`.
    pub code: CategoryCode,
    /// Chinese name.
    pub name: String,
    /// English name.
    pub name_en: String,
}

/// A top-level case category (one of the domains).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Code, e.g. `safety`.
    pub code: CategoryCode,
    /// Chinese name.
    pub name: String,
    /// English name.
    pub name_en: String,
    /// Its subcategories.
    pub subcategories: Vec<Subcategory>,
    /// How many days a closed case of this category is kept (counted from when
    /// it was closed, or the relay last received an entry of it, whichever is
    /// later), then erased from the relay, the phones and new backups; `None`
    /// keeps it (docs/directory-format.md, "Retention").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
}

/// How long a dispatched case may take. `"*"` matches any category or severity;
/// the most specific matching rule wins.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadlineRule {
    /// A category code or `"*"`.
    pub category: String,
    /// A severity or `"*"`.
    pub severity: String,
    /// Hours from dispatch to deadline.
    pub hours: u32,
}

/// How often a town visits the persons of a special group (走访频次).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitRule {
    /// The special group's stored name (e.g. `elderly_alone`).
    pub tag: String,
    /// Days between visits.
    pub every_days: u32,
}

/// Points (积分) a grid worker earns, per event, in whole points: what a town pays
/// or rewards its workers by. Counted from the cases and visits themselves (see
/// `points.rs`), so every replica holding the same documents agrees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointsRules {
    /// Per report that is not marked invalid.
    #[serde(default)]
    pub valid_report: i32,
    /// Per case the worker handled on the spot (自办).
    #[serde(default)]
    pub handled_on_the_spot: i32,
    /// Added per valid report of severity `urgent` (重大).
    #[serde(default)]
    pub major_case: i32,
    /// Per report marked invalid (usually negative).
    #[serde(default)]
    pub invalid_report: i32,
    /// Per household visit (走访).
    #[serde(default)]
    pub visit: i32,
    /// Per safety inspection of a place.
    #[serde(default)]
    pub inspection: i32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryFile {
    format: String,
    version: u32,
    name: String,
    regions: Vec<Region>,
    departments: Vec<Department>,
    users: Vec<User>,
    taxonomy: Vec<Category>,
    deadline_rules: Vec<DeadlineRule>,
    /// Optional: a directory without it has no visits due.
    #[serde(default)]
    visit_rules: Vec<VisitRule>,
    /// Optional: a directory without it awards no points.
    #[serde(default)]
    points_rules: Option<PointsRules>,
}

/// The loaded, validated directory with lookup indexes.
#[derive(Debug)]
pub struct Directory {
    /// Name of the top region (e.g. the district).
    pub name: String,
    regions: Vec<Region>,
    departments: Vec<Department>,
    users: Vec<User>,
    taxonomy: Vec<Category>,
    deadline_rules: Vec<DeadlineRule>,
    visit_rules: Vec<(Tag, u32)>,
    points_rules: Option<PointsRules>,
    region_idx: HashMap<RegionCode, usize>,
    dept_idx: HashMap<DeptId, usize>,
    user_idx: HashMap<UserId, usize>,
    category_idx: HashMap<CategoryCode, usize>,
    subcategory_idx: HashMap<CategoryCode, usize>,
}

fn invalid(msg: String) -> DirectoryError {
    DirectoryError::Invalid(msg)
}

const MAX_NAME_CHARS: usize = 100;

fn check_name(what: &str, id: &str, name: &str) -> Result<(), DirectoryError> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        return Err(invalid(format!(
            "{what} {id}: name must have 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(())
}

impl Directory {
    /// The copy of a directory file a phone receives: without what only the
    /// server uses — regions' boundaries (the console's map, a resident's report
    /// routed) and users' contacts (the message gateway's; staff's phone numbers
    /// have no business on every phone). Smaller, and readable by app builds from
    /// before those fields.
    pub fn device_copy(json: &str) -> Result<String, DirectoryError> {
        let mut file: serde_json::Value = serde_json::from_str(json)?;
        for (list, field) in [("regions", "boundary"), ("users", "contact")] {
            if let Some(items) = file.get_mut(list).and_then(|v| v.as_array_mut()) {
                for item in items.iter_mut().filter_map(|v| v.as_object_mut()) {
                    item.remove(field);
                }
            }
        }
        Ok(file.to_string())
    }

    /// Parse and validate a directory file.
    pub fn from_json(json: &str) -> Result<Directory, DirectoryError> {
        if json.len() > MAX_DIRECTORY_BYTES {
            return Err(DirectoryError::TooLarge(json.len()));
        }
        let file: DirectoryFile = serde_json::from_str(json)?;
        if file.format != FORMAT {
            return Err(invalid(format!(
                "format is {:?}, expected {FORMAT:?}",
                file.format
            )));
        }
        if file.version != VERSION {
            return Err(invalid(format!(
                "version {} is not supported (expected {VERSION})",
                file.version
            )));
        }
        Self::build(file)
    }

    fn build(file: DirectoryFile) -> Result<Directory, DirectoryError> {
        // A directory's top is a district (a district's deployment) or a city above
        // its districts; once a city is listed, every district must sit under one.
        let has_city = file.regions.iter().any(|r| r.level == RegionLevel::City);
        let mut region_idx = HashMap::new();
        for (i, r) in file.regions.iter().enumerate() {
            check_name("region", r.code.as_str(), &r.name)?;
            if r.code.level() != r.level {
                return Err(invalid(format!(
                    "region {}: level {} does not match a code of {} digits",
                    r.code,
                    r.level.as_str(),
                    r.code.as_str().len()
                )));
            }
            let needs_parent = r.level != RegionLevel::District || has_city;
            if let Some(parent_level) = r.level.parent().filter(|_| needs_parent) {
                let parent = r
                    .code
                    .ancestor(parent_level)
                    .filter(|p| region_idx.contains_key(p));
                if parent.is_none() {
                    return Err(invalid(format!(
                        "region {}: its parent region is not listed before it",
                        r.code
                    )));
                }
            }
            if let Some(ring) = &r.boundary {
                check_boundary(&r.code, ring)?;
            }
            if region_idx.insert(r.code.clone(), i).is_some() {
                return Err(invalid(format!("region {} is listed twice", r.code)));
            }
        }
        if !file
            .regions
            .iter()
            .any(|r| r.level == RegionLevel::District)
        {
            return Err(invalid("no district-level region".into()));
        }

        let mut dept_idx = HashMap::new();
        for (i, d) in file.departments.iter().enumerate() {
            check_name("department", d.id.as_str(), &d.name)?;
            if !region_idx.contains_key(&d.region) {
                return Err(invalid(format!(
                    "department {}: unknown region {}",
                    d.id, d.region
                )));
            }
            if dept_idx.insert(d.id.clone(), i).is_some() {
                return Err(invalid(format!("department {} is listed twice", d.id)));
            }
        }

        let mut user_idx = HashMap::new();
        for (i, u) in file.users.iter().enumerate() {
            check_name("user", u.id.as_str(), &u.name)?;
            if let Some(contact) = &u.contact {
                let n = contact.chars().count();
                if n == 0 || n > MAX_CONTACT_CHARS || contact.chars().any(char::is_control) {
                    return Err(invalid(format!(
                        "user {}: contact must have 1 to {MAX_CONTACT_CHARS} characters and no control characters",
                        u.id
                    )));
                }
            }
            if !region_idx.contains_key(&u.region) {
                return Err(invalid(format!(
                    "user {}: unknown region {}",
                    u.id, u.region
                )));
            }
            if let Some(level) = u.role.home_level() {
                if u.region.level() != level {
                    return Err(invalid(format!(
                        "user {}: a {} must be placed at a {} region",
                        u.id,
                        u.role.as_str(),
                        level.as_str()
                    )));
                }
            }
            match (&u.department, u.role) {
                (Some(d), Role::DepartmentHandler) if dept_idx.contains_key(d) => {}
                (Some(d), Role::DepartmentHandler) => {
                    return Err(invalid(format!("user {}: unknown department {d}", u.id)))
                }
                (None, Role::DepartmentHandler) => {
                    return Err(invalid(format!(
                        "user {}: a department handler needs a department",
                        u.id
                    )))
                }
                (Some(_), _) => {
                    return Err(invalid(format!(
                        "user {}: only department handlers have a department",
                        u.id
                    )))
                }
                (None, _) => {}
            }
            if user_idx.insert(u.id.clone(), i).is_some() {
                return Err(invalid(format!("user {} is listed twice", u.id)));
            }
        }

        let mut category_idx = HashMap::new();
        let mut subcategory_idx = HashMap::new();
        for (i, c) in file.taxonomy.iter().enumerate() {
            check_name("category", c.code.as_str(), &c.name)?;
            if c.code.as_str().contains('.') {
                return Err(invalid(format!(
                    "category {}: must not contain '.'",
                    c.code
                )));
            }
            if category_idx.insert(c.code.clone(), i).is_some() {
                return Err(invalid(format!("category {} is listed twice", c.code)));
            }
            if let Some(days) = c.retention_days {
                if !(MIN_RETENTION_DAYS..=MAX_RETENTION_DAYS).contains(&days) {
                    return Err(invalid(format!(
                        "category {}: retention_days must be {MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS}",
                        c.code
                    )));
                }
            }
            let prefix = format!("{}.", c.code);
            for s in &c.subcategories {
                check_name("subcategory", s.code.as_str(), &s.name)?;
                if !s.code.as_str().starts_with(&prefix) {
                    return Err(invalid(format!(
                        "subcategory {} must start with {prefix}",
                        s.code
                    )));
                }
                if subcategory_idx.insert(s.code.clone(), i).is_some() {
                    return Err(invalid(format!("subcategory {} is listed twice", s.code)));
                }
            }
        }
        if category_idx.is_empty() {
            return Err(invalid("the taxonomy is empty".into()));
        }

        let mut seen_rules = HashSet::new();
        let mut has_default = false;
        for r in &file.deadline_rules {
            if r.category != "*" && !file.taxonomy.iter().any(|c| c.code.as_str() == r.category) {
                return Err(invalid(format!(
                    "deadline rule: unknown category {:?}",
                    r.category
                )));
            }
            if r.severity != "*" && Severity::parse(&r.severity).is_none() {
                return Err(invalid(format!(
                    "deadline rule: unknown severity {:?}",
                    r.severity
                )));
            }
            if r.hours == 0 || r.hours > 24 * 365 {
                return Err(invalid(format!(
                    "deadline rule {}/{}: hours must be between 1 and 8760",
                    r.category, r.severity
                )));
            }
            if !seen_rules.insert((r.category.clone(), r.severity.clone())) {
                return Err(invalid(format!(
                    "deadline rule {}/{} is listed twice",
                    r.category, r.severity
                )));
            }
            has_default |= r.category == "*" && r.severity == "*";
        }
        if !has_default {
            return Err(invalid(
                "deadline rules need a default rule with category \"*\" and severity \"*\"".into(),
            ));
        }

        let mut visit_rules = Vec::new();
        for r in &file.visit_rules {
            let tag = Tag::parse(&r.tag)
                .ok_or_else(|| invalid(format!("visit rule: unknown special group {:?}", r.tag)))?;
            if !(1..=366).contains(&r.every_days) {
                return Err(invalid(format!(
                    "visit rule {}: every_days must be between 1 and 366",
                    r.tag
                )));
            }
            if visit_rules.iter().any(|(t, _)| *t == tag) {
                return Err(invalid(format!("visit rule {} is listed twice", r.tag)));
            }
            visit_rules.push((tag, r.every_days));
        }

        if let Some(p) = &file.points_rules {
            let each = [
                ("valid_report", p.valid_report),
                ("handled_on_the_spot", p.handled_on_the_spot),
                ("major_case", p.major_case),
                ("invalid_report", p.invalid_report),
                ("visit", p.visit),
                ("inspection", p.inspection),
            ];
            if let Some((name, _)) = each.iter().find(|(_, v)| !(-1_000..=1_000).contains(v)) {
                return Err(invalid(format!(
                    "points rule {name} must be between -1000 and 1000"
                )));
            }
        }

        Ok(Directory {
            name: file.name,
            regions: file.regions,
            departments: file.departments,
            users: file.users,
            taxonomy: file.taxonomy,
            deadline_rules: file.deadline_rules,
            visit_rules,
            points_rules: file.points_rules,
            region_idx,
            dept_idx,
            user_idx,
            category_idx,
            subcategory_idx,
        })
    }

    /// The deadline rules, as the file lists them.
    pub fn deadline_rules(&self) -> &[DeadlineRule] {
        &self.deadline_rules
    }

    /// Days between visits to the persons of special group `tag`, if the town
    /// visits them on a schedule.
    pub fn visit_every(&self, tag: Tag) -> Option<u32> {
        self.visit_rules
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, days)| *days)
    }

    /// The town's points rules, if it awards points.
    pub fn points_rules(&self) -> Option<PointsRules> {
        self.points_rules
    }

    /// A user by id.
    pub fn user(&self, id: &UserId) -> Option<&User> {
        self.user_idx.get(id).map(|&i| &self.users[i])
    }

    /// All users.
    pub fn users(&self) -> &[User] {
        &self.users
    }

    /// A region by code.
    pub fn region(&self, code: &RegionCode) -> Option<&Region> {
        self.region_idx.get(code).map(|&i| &self.regions[i])
    }

    /// All regions, parents before children.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The listed region one level above `level` that holds `code` — where a case
    /// of that level in that place goes when it is sent up — if the directory
    /// reaches that high (a district's own directory ends at the district).
    pub fn region_above(&self, code: &RegionCode, level: RegionLevel) -> Option<&Region> {
        let up = code.ancestor(level.parent()?)?;
        self.region(&up)
    }

    /// Whether `code` is a top of the region tree: no region above it is listed.
    /// Its administrators keep the whole directory.
    pub fn is_top(&self, code: &RegionCode) -> bool {
        self.region_above(code, code.level()).is_none()
    }

    /// The grid whose boundary holds a position (WGS-84), if any; the first in
    /// the directory's order where boundaries overlap.
    pub fn grid_at(&self, lat: f64, lon: f64) -> Option<&Region> {
        self.regions
            .iter()
            .find(|r| r.level == RegionLevel::Grid && r.contains_point(lat, lon))
    }

    /// A department by id.
    pub fn department(&self, id: &DeptId) -> Option<&Department> {
        self.dept_idx.get(id).map(|&i| &self.departments[i])
    }

    /// All departments.
    pub fn departments(&self) -> &[Department] {
        &self.departments
    }

    /// The taxonomy.
    pub fn categories(&self) -> &[Category] {
        &self.taxonomy
    }

    /// A top-level category by code.
    pub fn category(&self, code: &CategoryCode) -> Option<&Category> {
        self.category_idx.get(code).map(|&i| &self.taxonomy[i])
    }

    /// Whether `sub` is a subcategory of `category`.
    pub fn is_subcategory_of(&self, sub: &CategoryCode, category: &CategoryCode) -> bool {
        self.subcategory_idx
            .get(sub)
            .is_some_and(|&i| self.taxonomy[i].code == *category)
    }

    /// Hours allowed for a case of this category and severity: the most specific
    /// matching rule (exact category and severity, then category, then severity,
    /// then the default).
    pub fn deadline_hours(&self, category: &CategoryCode, severity: Severity) -> u32 {
        let cat = category.as_str();
        let sev = severity.as_str();
        let candidates = [(cat, sev), (cat, "*"), ("*", sev), ("*", "*")];
        candidates
            .iter()
            .find_map(|(c, s)| {
                self.deadline_rules
                    .iter()
                    .find(|r| r.category == *c && r.severity == *s)
            })
            .map_or(72, |r| r.hours)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The sample directory shipped with the crate.
    pub(crate) const SAMPLE: &str = include_str!("../data/sample-directory.json");

    pub(crate) fn sample() -> Directory {
        Directory::from_json(SAMPLE).expect("sample directory is valid")
    }

    /// The sample district under a city (3399) with a city dispatcher `sd-3399-1`,
    /// as JSON.
    pub(crate) fn city_json() -> serde_json::Value {
        let mut d: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
        let city = serde_json::json!({"code": "3399", "name": "清川市", "level": "city"});
        d["regions"].as_array_mut().unwrap().insert(0, city);
        let dispatcher = serde_json::json!({
            "id": "sd-3399-1", "name": "市值班员", "role": "city_dispatcher", "region": "3399"
        });
        d["users"].as_array_mut().unwrap().push(dispatcher);
        d
    }

    pub(crate) fn city_sample() -> Directory {
        Directory::from_json(&city_json().to_string()).expect("city directory is valid")
    }

    #[test]
    fn a_city_may_top_the_tree_and_then_holds_every_district() {
        let district: RegionCode = "339901".parse().unwrap();
        let city: RegionCode = "3399".parse().unwrap();
        let alone = sample();
        assert!(alone.is_top(&district));
        assert!(alone
            .region_above(&district, RegionLevel::District)
            .is_none());
        let above = city_sample();
        assert!(!above.is_top(&district) && above.is_top(&city));
        let grid: RegionCode = "339901001001001".parse().unwrap();
        assert_eq!(
            above
                .region_above(&grid, RegionLevel::District)
                .map(|r| &r.code),
            Some(&city)
        );
        assert_eq!(
            above
                .region_above(&grid, RegionLevel::Community)
                .map(|r| r.code.as_str()),
            Some("339901001")
        );

        // Once a city is listed, a district outside every listed city is refused.
        let mut stray = city_json();
        stray["regions"][0]["code"] = "3398".into();
        let err = Directory::from_json(&stray.to_string()).unwrap_err();
        assert!(
            err.to_string().contains("339901: its parent region"),
            "{err}"
        );
        // A city dispatcher works at a city.
        let mut misplaced = city_json();
        let users = misplaced["users"].as_array_mut().unwrap();
        users.last_mut().unwrap()["region"] = "339901".into();
        let err = Directory::from_json(&misplaced.to_string()).unwrap_err();
        assert!(
            err.to_string()
                .contains("a city_dispatcher must be placed at a city region"),
            "{err}"
        );
    }

    #[test]
    fn sample_directory_loads_with_a_few_hundred_grids() {
        let dir = sample();
        let grids = dir
            .regions()
            .iter()
            .filter(|r| r.level == RegionLevel::Grid)
            .count();
        assert!((200..=400).contains(&grids), "{grids} grids");
        assert_eq!(dir.categories().len(), 6);
        let worker = dir
            .users()
            .iter()
            .find(|u| u.role == Role::GridWorker)
            .unwrap();
        assert_eq!(worker.region.level(), RegionLevel::Grid);
    }

    /// The sample's grids tile their communities: a point well inside each grid
    /// (the middle of its ring's corners) is found in that grid and no other,
    /// the tests' usual position lies in the first grid, and a point outside the
    /// district in none.
    #[test]
    fn a_position_falls_in_the_grid_whose_boundary_holds_it() {
        let dir = sample();
        let mut grids = 0;
        for r in dir
            .regions()
            .iter()
            .filter(|r| r.level == RegionLevel::Grid)
        {
            let ring = r
                .boundary
                .as_ref()
                .expect("every sample grid has a boundary");
            let n = ring.len() as f64;
            let lon = ring.iter().map(|p| p[0]).sum::<f64>() / n;
            let lat = ring.iter().map(|p| p[1]).sum::<f64>() / n;
            assert_eq!(dir.grid_at(lat, lon).map(|g| &g.code), Some(&r.code));
            let holders = dir
                .regions()
                .iter()
                .filter(|g| g.level == RegionLevel::Grid && g.contains_point(lat, lon))
                .count();
            assert_eq!(holders, 1, "grids overlap at {}", r.code);
            let community = r.code.ancestor(RegionLevel::Community).unwrap();
            assert!(dir.region(&community).unwrap().contains_point(lat, lon));
            grids += 1;
        }
        assert!(grids > 200);
        assert_eq!(
            dir.grid_at(30.2741, 120.1551).map(|g| g.code.as_str()),
            Some("339901001001001")
        );
        assert!(
            dir.grid_at(39.9042, 116.4074).is_none(),
            "Beijing is not in it"
        );
    }

    #[test]
    fn a_phones_copy_leaves_out_boundaries_and_contacts() {
        let mut file: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
        file["users"][0]["contact"] = "13800000000".into();
        let copy = Directory::device_copy(&file.to_string()).unwrap();
        assert!(!copy.contains("boundary") && !copy.contains("13800000000"));
        assert!(copy.len() < SAMPLE.len() / 2, "{} bytes", copy.len());
        let dir = Directory::from_json(&copy).unwrap();
        assert_eq!(dir.regions().len(), sample().regions().len());
        assert!(dir.grid_at(30.2741, 120.1551).is_none());
    }

    #[test]
    fn a_boundary_is_one_ring_of_valid_points() {
        for (bad, says) in [
            (
                "[[120.1, 30.2], [120.2, 30.2]]",
                "a boundary has 3 to 2000 points",
            ),
            (
                "[[120.1, 30.2], [120.2, 30.2], [200.0, 30.3]]",
                "boundary point 3 is not a [longitude, latitude] pair in range",
            ),
            (
                "[[120.1, 30.2], [120.2, 30.2], [120.2]]",
                "invalid length 1",
            ),
        ] {
            let mut file: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
            file["regions"][3]["boundary"] = serde_json::from_str(bad).unwrap();
            let err = Directory::from_json(&file.to_string())
                .err()
                .map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.contains(says)),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn a_contact_is_optional_and_bounded() {
        // The sample has no contacts: files from before the field load unchanged.
        assert!(sample().users().iter().all(|u| u.contact.is_none()));
        let with = |contact: &str| {
            SAMPLE.replacen(
                r#""role": "town_dispatcher","#,
                &format!(r#""role": "town_dispatcher", "contact": {contact:?},"#),
                1,
            )
        };
        let dir = Directory::from_json(&with("13800000000")).unwrap();
        let td = dir.user(&"td-339901001".parse().unwrap()).unwrap();
        assert_eq!(td.contact.as_deref(), Some("13800000000"));
        for bad in ["", &"1".repeat(MAX_CONTACT_CHARS + 1), "138\n00"] {
            assert!(matches!(
                Directory::from_json(&with(bad)),
                Err(DirectoryError::Invalid(_))
            ));
        }
    }

    #[test]
    fn a_retention_is_optional_and_bounded() {
        // The sample keeps every category: files from before the field load unchanged.
        assert!(sample()
            .categories()
            .iter()
            .all(|c| c.retention_days.is_none()));
        let with = |days: u32| mutate(|v| v["taxonomy"][0]["retention_days"] = days.into());
        let dir = with(MIN_RETENTION_DAYS).unwrap();
        assert_eq!(dir.categories()[0].retention_days, Some(MIN_RETENTION_DAYS));
        assert!(with(MAX_RETENTION_DAYS).is_ok());
        for bad in [0, MIN_RETENTION_DAYS - 1, MAX_RETENTION_DAYS + 1] {
            match with(bad) {
                Err(DirectoryError::Invalid(why)) => {
                    assert!(why.contains("retention_days must be 30 to 36500"), "{why}")
                }
                other => panic!("{bad} days: {other:?}"),
            }
        }
    }

    #[test]
    fn deadline_rules_pick_the_most_specific() {
        let dir = sample();
        let safety: CategoryCode = "safety".parse().unwrap();
        let city: CategoryCode = "city".parse().unwrap();
        assert_eq!(dir.deadline_hours(&safety, Severity::Urgent), 2);
        assert_eq!(dir.deadline_hours(&city, Severity::Urgent), 4);
        assert_eq!(dir.deadline_hours(&city, Severity::Low), 120);
    }

    fn mutate(f: impl FnOnce(&mut serde_json::Value)) -> Result<Directory, DirectoryError> {
        let mut v: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
        f(&mut v);
        Directory::from_json(&v.to_string())
    }

    #[test]
    fn inconsistent_directories_are_refused_with_the_reason() {
        type Mutation = Box<dyn FnOnce(&mut serde_json::Value)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("format", Box::new(|v| v["format"] = "other".into())),
            ("version 2", Box::new(|v| v["version"] = 2.into())),
            (
                "listed twice",
                Box::new(|v| {
                    let r = v["regions"][1].clone();
                    v["regions"].as_array_mut().unwrap().push(r)
                }),
            ),
            (
                "parent region",
                Box::new(|v| v["regions"][1]["code"] = "339999001".into()),
            ),
            (
                "must be placed at a grid",
                Box::new(|v| {
                    let users = v["users"].as_array_mut().unwrap();
                    let w = users
                        .iter_mut()
                        .find(|u| u["role"] == "grid_worker")
                        .unwrap();
                    w["region"] = "339901001".into();
                }),
            ),
            (
                "unknown department",
                Box::new(|v| {
                    let users = v["users"].as_array_mut().unwrap();
                    let h = users
                        .iter_mut()
                        .find(|u| u["role"] == "department_handler")
                        .unwrap();
                    h["department"] = "nope".into();
                }),
            ),
            (
                "unknown category",
                Box::new(|v| {
                    v["deadline_rules"]
                        .as_array_mut()
                        .unwrap()
                        .push(serde_json::json!({"category":"x","severity":"*","hours":1}))
                }),
            ),
            ("unknown field", Box::new(|v| v["extra"] = 1.into())),
            (
                "points rule visit must be between -1000 and 1000",
                Box::new(|v| v["points_rules"]["visit"] = 5000.into()),
            ),
            (
                "unknown field",
                Box::new(|v| v["points_rules"]["per_smile"] = 1.into()),
            ),
        ];
        for (expected, f) in cases {
            let err = mutate(f).expect_err(expected).to_string();
            assert!(
                err.contains(expected),
                "{err:?} should mention {expected:?}"
            );
        }
    }
}
