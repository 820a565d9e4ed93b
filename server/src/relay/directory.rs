//! The directory as versioned data (`docs/directory-format.md`, "Revisions"):
//! every change is a new revision in the store with who made it and when; the
//! newest is in force. A node loads it at start and picks up a newer one another
//! node stored (on a shared database) within seconds; every phone receives it in
//! its next pull answer, and a downstream relay in its upstream round.
//!
//! Changes come from a directory file given at start (imported when its content
//! changed since the last import, so edits made in the console survive a restart
//! with the same file), `gridsync admin directory import`, the console's
//! directory page, or the upstream server (a town under a district keeps the
//! district's and edits none of its own).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use gridsync_core::directory::{Directory, PointsRules};
use gridsync_core::sync::wire::DirectoryUpdate;
use gridsync_core::{access, CategoryCode, DeptId, RegionCode, Role, User, UserId};
use serde_json::Value;

use super::store::DirectoryRevision;
use super::{sha256, ConsoleUser, Relay, RelayError};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// The SHA-256 of the directory file imported last (`meta`).
const FILE_HASH: &str = "directory_file_sha256";
/// How often a node looks for a newer revision another process stored.
const CHECK_EVERY_MS: i64 = 2_000;
/// Revisions the console lists.
pub const HISTORY: u32 = 50;
/// Largest directory stored as a revision: it travels in a pull answer beside a
/// page of at most 8 MiB, and a client reads 16 MiB at most.
pub const MAX_REVISION_BYTES: usize = 4 * 1024 * 1024;
/// How long after a revision moves a user her phone's work in her former
/// placement is still taken: what she did offline before she heard of the move
/// (an offline week at most) arrives rather than being refused.
pub const FORMER_PLACEMENT_DAYS: i64 = 7;

/// The revision a node has loaded, with what it sends.
pub(super) struct Loaded {
    revision: u64,
    /// The whole directory, for downstream relays.
    json: Arc<str>,
    /// A phone's copy ([`Directory::device_copy`]).
    device_json: Arc<str>,
    /// Where users worked before a revision of the last
    /// [`FORMER_PLACEMENT_DAYS`] moved them: the entry, until when, and the
    /// revision that moved them.
    former: std::collections::HashMap<UserId, Vec<(User, i64, u64)>>,
}

/// A change made in the console's directory page.
#[derive(Debug, Clone)]
pub enum DirectoryEdit {
    /// Add a user, or move one (another region, role or department).
    PlaceUser {
        /// Her id.
        id: UserId,
        /// Her name (required for a new user; kept if empty).
        name: String,
        /// Her role.
        role: Role,
        /// Where she works.
        region: RegionCode,
        /// For a department handler, her department.
        department: Option<DeptId>,
    },
    /// Add a department.
    AddDepartment {
        /// Its id.
        id: DeptId,
        /// Its name.
        name: String,
        /// The region whose cases it handles.
        region: RegionCode,
    },
    /// Change a rule or a category's names (an administrator of the top region).
    Rule(RuleEdit),
    /// Replace the whole directory (an administrator of the top region).
    Replace(String),
}

/// A change to the top region's rules or its taxonomy's names.
#[derive(Debug, Clone)]
pub enum RuleEdit {
    /// Rename a category.
    RenameCategory {
        /// Its code (kept: cases refer to it).
        code: CategoryCode,
        /// The Chinese name.
        name: String,
        /// The English name.
        name_en: String,
    },
    /// Set (add or change) the deadline rule for a category and a severity
    /// (`"*"` for any).
    Deadline {
        /// A category code or `"*"`.
        category: String,
        /// A severity or `"*"`.
        severity: String,
        /// Hours from dispatch to deadline.
        hours: u32,
    },
    /// Replace the points rules.
    Points(PointsRules),
    /// Set how often a special group is visited; `None` stops the schedule.
    Visit {
        /// The special group's stored name.
        tag: String,
        /// Days between visits.
        every_days: Option<u32>,
    },
    /// Set how many days a category's closed cases are kept (ADR 0017); `None`
    /// keeps them for good.
    Retention {
        /// The category's code.
        code: CategoryCode,
        /// Days after closing.
        days: Option<u32>,
    },
}

impl Relay {
    /// Load the directory at start: a directory file (`file`) becomes a new
    /// revision when its content differs from the file imported last; with none
    /// stored yet, the directory this node's replica kept (an install from before
    /// revisions) or the sample directory becomes revision 1.
    pub(super) fn open_directory(&self, file: Option<&str>) -> Result<(), RelayError> {
        if let Some(json) = file {
            let hash: String = sha256(json).iter().map(|b| format!("{b:02x}")).collect();
            let changed = self.store.meta(FILE_HASH)?.as_deref() != Some(hash.as_str());
            if changed && self.refuse_with_upstream().is_err() {
                tracing::warn!(
                    "the directory file is ignored: this server keeps its upstream server's directory"
                );
            } else if changed {
                self.refresh_directory()?;
                // Nodes started together with the same file: one stores it.
                let after = self.directory_revision();
                if let Some(revision) = self.store_directory(json, None, "目录文件导入", after)?
                {
                    self.store.set_meta(FILE_HASH, &hash)?;
                    tracing::info!(revision, "directory file imported as a new revision");
                }
            }
        }
        if self.store.directory_revision()? == 0 {
            let json = match self.engine.directory_json() {
                Ok(json) => json,
                Err(_) => {
                    tracing::warn!("no directory configured; loading the sample directory");
                    crate::SAMPLE_DIRECTORY.to_owned()
                }
            };
            // Nodes started together: one stores it, the others load it.
            self.store_directory(&json, None, "初始目录", 0)?;
        }
        self.refresh_directory()
    }

    /// Load the store's newest revision if it is newer than this node's.
    pub fn refresh_directory(&self) -> Result<(), RelayError> {
        let _one_at_a_time = self
            .directory_writes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let newest = self.store.directory_revision()?;
        if newest <= self.directory_revision() {
            return Ok(());
        }
        let Some((revision, json)) = self.store.latest_directory()? else {
            return Ok(());
        };
        self.load(revision.revision, &json)
    }

    /// [`Relay::refresh_directory`] at most every few seconds: a revision
    /// another node stored, or `gridsync admin directory import` beside a running
    /// `serve`, is in force here that long after. Every device's request (before
    /// its user is looked up) and every console page call it.
    pub(crate) fn refresh_directory_now_and_then(&self) -> Result<(), RelayError> {
        let now = chrono::Utc::now().timestamp_millis();
        let last = self.directory_checked_ms.load(Ordering::Relaxed);
        if now - last < CHECK_EVERY_MS
            || self
                .directory_checked_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return Ok(());
        }
        self.refresh_directory()
    }

    fn load(&self, revision: u64, json: &str) -> Result<(), RelayError> {
        let device_json = Directory::device_copy(json).map_err(RelayError::internal)?;
        let since = chrono::Utc::now().timestamp_millis() - FORMER_PLACEMENT_DAYS * DAY_MS;
        let mut former: std::collections::HashMap<UserId, Vec<(User, i64, u64)>> =
            Default::default();
        for (user, entry, until, moved_by) in self.store.former_placements(since)? {
            match serde_json::from_str::<User>(&entry) {
                Ok(entry) => former
                    .entry(user)
                    .or_default()
                    .push((entry, until, moved_by)),
                Err(e) => tracing::error!(error = %e, "a stored former placement does not read"),
            }
        }
        self.engine
            .load_directory(json)
            .map_err(RelayError::internal)?;
        *self
            .directory_loaded
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(Loaded {
            revision,
            json: json.into(),
            device_json: device_json.into(),
            former,
        });
        tracing::info!(revision, "directory revision loaded");
        Ok(())
    }

    /// The revision this node has loaded (0 before the first).
    pub fn directory_revision(&self) -> u64 {
        self.directory_loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, |l| l.revision)
    }

    /// Where `user` worked before a revision of the last
    /// [`FORMER_PLACEMENT_DAYS`] moved her to another region — same role, same
    /// department: a new role counts at once — as far as her device, which holds
    /// revision `held`, has not heard of it: a push of hers that her placement
    /// now refuses is checked against these too.
    pub(super) fn former_placements(&self, user: &User, held: u64) -> Vec<User> {
        let since = chrono::Utc::now().timestamp_millis() - FORMER_PLACEMENT_DAYS * DAY_MS;
        self.directory_loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|l| l.former.get(&user.id))
            .map(|f| {
                f.iter()
                    .filter(|(was, until, moved_by)| {
                        *until >= since
                            && *moved_by > held
                            && (was.role, &was.department) == (user.role, &user.department)
                    })
                    .map(|(was, _, _)| was.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// What a pull answers a device that holds revision `held`: the newest, if
    /// newer — for a downstream relay of `relay` (its region) the whole without
    /// the staff contacts of other regions, a phone's copy for a phone.
    pub(super) fn directory_update(
        &self,
        held: Option<u64>,
        relay: Option<&RegionCode>,
    ) -> Option<DirectoryUpdate> {
        let held = held?;
        let loaded = self
            .directory_loaded
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let loaded = loaded.as_ref().filter(|l| l.revision > held)?;
        let json = match relay {
            Some(region) => match relay_copy(&loaded.json, region) {
                Ok(json) => json,
                Err(e) => {
                    tracing::error!(error = %e, "the directory for a downstream relay");
                    return None;
                }
            },
            None => loaded.device_json.to_string(),
        };
        Some(DirectoryUpdate {
            revision: loaded.revision,
            json,
        })
    }

    /// Validate `json` and store it as the revision after `after` (the one the
    /// change was made against), loading it; `None` if `after` is no longer the
    /// newest (another node or process stored one first).
    fn store_directory(
        &self,
        json: &str,
        by: Option<&UserId>,
        note: &str,
        after: u64,
    ) -> Result<Option<u64>, RelayError> {
        if json.len() > MAX_REVISION_BYTES {
            return Err(RelayError::bad_request(format!(
                "the directory is {} bytes; a revision has at most {MAX_REVISION_BYTES}",
                json.len()
            )));
        }
        let new = Directory::from_json(json).map_err(|e| RelayError::bad_request(e.to_string()))?;
        let _one_at_a_time = self
            .directory_writes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // The same directory again (a retried import, an upstream round cut
        // short) is no new revision.
        if let Some(loaded) = self
            .directory_loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|l| l.revision == after && *l.json == *json)
        {
            return Ok(Some(loaded.revision));
        }
        // Whom it moves (another region, role or department, or out): their
        // entries as they were. None at the first revision.
        let mut moved = Vec::new();
        if let Ok(old) = self.engine.directory() {
            for was in old.users() {
                let same = new.user(&was.id).is_some_and(|now| {
                    (&now.region, now.role, &now.department)
                        == (&was.region, was.role, &was.department)
                });
                if !same {
                    let entry = serde_json::to_string(was).map_err(RelayError::internal)?;
                    moved.push((was.id.clone(), entry));
                }
            }
        }
        let now = chrono::Utc::now().timestamp_millis();
        let stored = self
            .store
            .put_directory(json, by, note, now, &moved, after)?;
        if let Some(revision) = stored {
            self.load(revision, json)?;
        }
        Ok(stored)
    }

    /// [`Relay::store_directory`] for a change made against revision `after`:
    /// refused if another was stored meanwhile (the change was made without it).
    fn store_change(
        &self,
        json: &str,
        by: Option<&UserId>,
        note: &str,
        after: u64,
    ) -> Result<u64, RelayError> {
        self.store_directory(json, by, note, after)?
            .ok_or(RelayError::Busy(
                "the directory changed meanwhile; look at it again and repeat the change",
            ))
    }

    /// Import a directory file as a new revision (`gridsync admin directory
    /// import`): validated, with what changed as its note. Answers its number.
    pub fn import_directory(&self, json: &str) -> Result<u64, RelayError> {
        self.refuse_with_upstream()?;
        self.refresh_directory()?;
        let after = self.directory_revision();
        let note = self.describe_change(json)?;
        self.store_change(json, None, &format!("命令行导入：{note}"), after)
    }

    /// Keep the upstream server's revision `revision` (a town under a district).
    pub(super) fn adopt_upstream_directory(
        &self,
        update: &DirectoryUpdate,
    ) -> Result<u64, RelayError> {
        let after = self.directory_revision();
        let note = self.describe_change(&update.json)?;
        self.store_change(
            &update.json,
            None,
            &format!("上级下发（第 {} 版）：{note}", update.revision),
            after,
        )
    }

    /// The newest revisions, newest first (the console's history).
    pub fn directory_history(&self) -> Result<Vec<DirectoryRevision>, RelayError> {
        Ok(self.store.directory_history(HISTORY)?)
    }

    /// Apply a console edit by `who`, an administrator: users and departments
    /// within her region (never another administrator), or — for an
    /// administrator of the top region — the whole directory. A relay that syncs
    /// upward keeps its upstream's directory and takes no edits of its own.
    /// Answers the new revision.
    pub fn console_edit_directory(
        &self,
        who: &ConsoleUser,
        edit: DirectoryEdit,
    ) -> Result<u64, RelayError> {
        let refused = |message: &str| RelayError::Forbidden {
            code: "refused",
            message: message.into(),
        };
        if who.user.role != Role::Admin {
            return Err(refused("only administrators change the directory"));
        }
        self.refuse_with_upstream()?;
        let scope = access::scope_of(&who.user);
        // Made against the newest revision; stored only if it still is.
        self.refresh_directory()?;
        let after = self.directory_revision();
        let current = self.engine.directory_json().map_err(RelayError::internal)?;
        let dir = self.directory()?;
        let whole = dir.is_top(&who.user.region);
        let json = match edit {
            DirectoryEdit::Replace(_) | DirectoryEdit::Rule(_) if !whole => {
                return Err(refused(
                    "only an administrator of the top region (the district, or the city above it) changes its rules or replaces the directory",
                ));
            }
            DirectoryEdit::Replace(json) => {
                let admins = |d: &Directory| -> Vec<(String, String)> {
                    let mut all: Vec<_> = d
                        .users()
                        .iter()
                        .filter(|u| u.role == Role::Admin)
                        .map(|u| (u.id.to_string(), u.region.to_string()))
                        .collect();
                    all.sort();
                    all
                };
                let new = Directory::from_json(&json)
                    .map_err(|e| RelayError::bad_request(e.to_string()))?;
                if admins(&dir) != admins(&new) {
                    return Err(refused(
                        "administrators are placed with the command line (a directory file)",
                    ));
                }
                json
            }
            DirectoryEdit::Rule(rule) => edit_rule(&current, &rule)?,
            DirectoryEdit::PlaceUser {
                id,
                name,
                role,
                region,
                department,
            } => {
                let existing = dir.user(&id);
                if role == Role::Admin || existing.is_some_and(|u| u.role == Role::Admin) {
                    return Err(refused(
                        "administrators are placed with the command line (a directory file)",
                    ));
                }
                if !scope.covers(&region) || existing.is_some_and(|u| !scope.covers(&u.region)) {
                    return Err(refused(
                        "the user and her new region must be in your region",
                    ));
                }
                if existing.is_none() && name.trim().is_empty() {
                    return Err(RelayError::bad_request("a new user needs a name"));
                }
                // A handler sees her department's cases wherever they are: only a
                // department of the administrator's region, given or taken away.
                let outside =
                    |d: &DeptId| !dir.department(d).is_some_and(|d| scope.covers(&d.region));
                if department.as_ref().is_some_and(outside)
                    || existing
                        .and_then(|u| u.department.as_ref())
                        .is_some_and(outside)
                {
                    return Err(refused("the department must be one of your region's"));
                }
                place_user(
                    &current,
                    &id,
                    name.trim(),
                    role,
                    &region,
                    department.as_ref(),
                )?
            }
            DirectoryEdit::AddDepartment { id, name, region } => {
                if !scope.covers(&region) {
                    return Err(refused("the department's region must be in your region"));
                }
                if dir.department(&id).is_some() {
                    return Err(RelayError::bad_request(format!(
                        "department {id} already exists"
                    )));
                }
                add_department(&current, &id, name.trim(), &region)?
            }
        };
        let note = self.describe_change(&json)?;
        self.store_change(&json, Some(&who.user.id), &note, after)
    }

    /// A relay that syncs upward keeps its upstream's directory.
    fn refuse_with_upstream(&self) -> Result<(), RelayError> {
        if self.upstream().map_err(RelayError::internal)?.is_some() {
            return Err(RelayError::Forbidden {
                code: "refused",
                message: "this server keeps its upstream server's directory: change it there"
                    .into(),
            });
        }
        Ok(())
    }

    /// What `json` changes against the directory in force, in a line (Chinese,
    /// for the console's history): users and departments added, removed or
    /// moved, regions and categories added or removed. Refuses an invalid one.
    fn describe_change(&self, json: &str) -> Result<String, RelayError> {
        let new = Directory::from_json(json).map_err(|e| RelayError::bad_request(e.to_string()))?;
        let old = self.directory()?;
        let mut parts = Vec::new();
        let mut count = |what: &str, added: usize, removed: usize, changed: usize| {
            if added + removed + changed > 0 {
                parts.push(format!(
                    "{what} 新增 {added}、删除 {removed}、变更 {changed}"
                ));
            }
        };
        let users = |d: &Directory| -> Vec<(String, String)> {
            d.users()
                .iter()
                .map(|u| {
                    let dept = u.department.as_ref().map_or("", DeptId::as_str);
                    let at = format!("{} {} {dept} {}", u.role.as_str(), u.region, u.name);
                    (u.id.to_string(), at)
                })
                .collect()
        };
        let (a, r, c) = diff(&users(&old), &users(&new));
        count("用户", a, r, c);
        let departments = |d: &Directory| -> Vec<(String, String)> {
            d.departments()
                .iter()
                .map(|x| (x.id.to_string(), format!("{} {}", x.region, x.name)))
                .collect()
        };
        let (a, r, c) = diff(&departments(&old), &departments(&new));
        count("部门", a, r, c);
        let regions = |d: &Directory| -> Vec<(String, String)> {
            d.regions()
                .iter()
                .map(|x| (x.code.to_string(), format!("{} {:?}", x.name, x.boundary)))
                .collect()
        };
        let (a, r, c) = diff(&regions(&old), &regions(&new));
        count("区域", a, r, c);
        let categories = |d: &Directory| -> Vec<(String, String)> {
            d.categories()
                .iter()
                .map(|x| {
                    let subs: Vec<&str> = x.subcategories.iter().map(|s| s.name.as_str()).collect();
                    (x.code.to_string(), format!("{} {}", x.name, subs.join(",")))
                })
                .collect()
        };
        let (a, r, c) = diff(&categories(&old), &categories(&new));
        count("事件分类", a, r, c);
        if parts.is_empty() {
            parts.push("人员、部门、区域和分类未变（规则或名称变更）".into());
        }
        Ok(parts.join("；"))
    }
}

/// Added, removed and changed keys from `old` to `new`.
fn diff(old: &[(String, String)], new: &[(String, String)]) -> (usize, usize, usize) {
    let old: std::collections::HashMap<_, _> = old.iter().cloned().collect();
    let new: std::collections::HashMap<_, _> = new.iter().cloned().collect();
    let added = new.keys().filter(|k| !old.contains_key(*k)).count();
    let removed = old.keys().filter(|k| !new.contains_key(*k)).count();
    let changed = new
        .iter()
        .filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v))
        .count();
    (added, removed, changed)
}

fn parse(json: &str) -> Result<Value, RelayError> {
    serde_json::from_str(json).map_err(RelayError::internal)
}

fn list<'a>(file: &'a mut Value, key: &str) -> Result<&'a mut Vec<Value>, RelayError> {
    file.get_mut(key)
        .and_then(Value::as_array_mut)
        .ok_or_else(|| RelayError::internal(format!("the stored directory has no {key} list")))
}

/// The directory `json` with user `id` added or placed anew (her contact and,
/// when `name` is empty, her name kept).
fn place_user(
    json: &str,
    id: &UserId,
    name: &str,
    role: Role,
    region: &RegionCode,
    department: Option<&DeptId>,
) -> Result<String, RelayError> {
    let mut file = parse(json)?;
    let users = list(&mut file, "users")?;
    let at = users
        .iter()
        .position(|u| u.get("id").and_then(Value::as_str) == Some(id.as_str()));
    let mut user = match at {
        Some(i) => users.remove(i),
        None => Value::Object(Default::default()),
    };
    let fields = user
        .as_object_mut()
        .ok_or_else(|| RelayError::internal("a stored user is not an object"))?;
    fields.insert("id".into(), id.as_str().into());
    if !name.is_empty() {
        fields.insert("name".into(), name.into());
    }
    fields.insert("role".into(), role.as_str().into());
    fields.insert("region".into(), region.as_str().into());
    match department {
        Some(d) => fields.insert("department".into(), d.as_str().into()),
        None => fields.remove("department"),
    };
    users.insert(at.unwrap_or(users.len()), user);
    Ok(file.to_string())
}

/// The whole directory `json` for a downstream relay of `region`: staff contacts
/// of users outside its region left out.
fn relay_copy(json: &str, region: &RegionCode) -> Result<String, RelayError> {
    let mut file = parse(json)?;
    for user in list(&mut file, "users")?.iter_mut() {
        let inside = user
            .get("region")
            .and_then(Value::as_str)
            .and_then(|r| r.parse::<RegionCode>().ok())
            .is_some_and(|r| region.contains(&r));
        if let (false, Some(fields)) = (inside, user.as_object_mut()) {
            fields.remove("contact");
        }
    }
    Ok(file.to_string())
}

/// The directory `json` with `rule` applied.
fn edit_rule(json: &str, rule: &RuleEdit) -> Result<String, RelayError> {
    let mut file = parse(json)?;
    match rule {
        RuleEdit::RenameCategory {
            code,
            name,
            name_en,
        } => {
            let category = list(&mut file, "taxonomy")?
                .iter_mut()
                .find(|c| c.get("code").and_then(Value::as_str) == Some(code.as_str()))
                .and_then(Value::as_object_mut)
                .ok_or_else(|| RelayError::bad_request(format!("no category {code}")))?;
            let english = name_en.trim();
            if !(1..=100).contains(&english.chars().count()) {
                return Err(RelayError::bad_request(
                    "the English name must have 1 to 100 characters",
                ));
            }
            category.insert("name".into(), name.trim().into());
            category.insert("name_en".into(), english.into());
        }
        RuleEdit::Deadline {
            category,
            severity,
            hours,
        } => {
            let rules = list(&mut file, "deadline_rules")?;
            let same = |r: &Value| {
                r.get("category").and_then(Value::as_str) == Some(category.as_str())
                    && r.get("severity").and_then(Value::as_str) == Some(severity.as_str())
            };
            rules.retain(|r| !same(r));
            rules.push(serde_json::json!({
                "category": category, "severity": severity, "hours": hours,
            }));
        }
        RuleEdit::Retention { code, days } => {
            let category = list(&mut file, "taxonomy")?
                .iter_mut()
                .find(|c| c.get("code").and_then(Value::as_str) == Some(code.as_str()))
                .and_then(Value::as_object_mut)
                .ok_or_else(|| RelayError::bad_request(format!("no category {code}")))?;
            match days {
                Some(days) => category.insert("retention_days".into(), (*days).into()),
                None => category.remove("retention_days"),
            };
        }
        RuleEdit::Points(points) => {
            let points = serde_json::to_value(points).map_err(RelayError::internal)?;
            object(&mut file)?.insert("points_rules".into(), points);
        }
        RuleEdit::Visit { tag, every_days } => {
            let rules = object(&mut file)?
                .entry("visit_rules")
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
                .ok_or_else(|| RelayError::internal("the stored visit rules are not a list"))?;
            rules.retain(|r| r.get("tag").and_then(Value::as_str) != Some(tag.as_str()));
            if let Some(days) = every_days {
                rules.push(serde_json::json!({ "tag": tag, "every_days": days }));
            }
        }
    }
    Ok(file.to_string())
}

fn object(file: &mut Value) -> Result<&mut serde_json::Map<String, Value>, RelayError> {
    file.as_object_mut()
        .ok_or_else(|| RelayError::internal("the stored directory is not an object"))
}

/// The directory `json` with a department added.
fn add_department(
    json: &str,
    id: &DeptId,
    name: &str,
    region: &RegionCode,
) -> Result<String, RelayError> {
    let mut file = parse(json)?;
    list(&mut file, "departments")?.push(serde_json::json!({
        "id": id.as_str(),
        "name": name,
        "region": region.as_str(),
    }));
    Ok(file.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_placed_anew_keeping_what_the_edit_does_not_name() {
        let json = r#"{"users":[{"id":"w-1","name":"熊雨","role":"grid_worker","region":"339901001001001","contact":"x"}]}"#;
        let placed = place_user(
            json,
            &"w-1".parse().unwrap(),
            "",
            Role::GridWorker,
            &"339901001001002".parse().unwrap(),
            None,
        )
        .unwrap();
        let file: Value = serde_json::from_str(&placed).unwrap();
        let user = &file["users"][0];
        assert_eq!(user["region"], "339901001001002");
        assert_eq!(user["name"], "熊雨");
        assert_eq!(user["contact"], "x");
        assert_eq!(file["users"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_diff_counts_added_removed_and_changed() {
        let old = [("a".into(), "1".into()), ("b".into(), "2".into())];
        let new = [("b".into(), "3".into()), ("c".into(), "1".into())];
        assert_eq!(diff(&old, &new), (1, 1, 1));
    }
}
