//! Rosters in and out: a town's spreadsheet of households and residents imported
//! into the registry (`gridsync admin import-registry`, the console's upload), and
//! the registry of a region exported as CSV or XLSX with ID and phone numbers
//! masked. See `docs/registry-import.md`.
//!
//! An import is checked whole before anything is written: every row is validated
//! (ID check digit, grid in the directory and in the user's region, duplicates in
//! the file and against the registry, tags, phone, lengths) and any problem answers
//! with a row-by-row report in Chinese and nothing imported. A valid file becomes
//! drafts made as the importing user on the relay's replica — exactly the checks
//! of a phone's registration — stored through the relay's checked push, so they
//! are authorised, logged and pulled by phones like a phone's change. Persons are
//! matched by ID number, households by grid and address; a row that matches and
//! says nothing new changes nothing, so importing the same file again is a no-op.
//!
//! The report never repeats an ID or phone number; it names rows and columns.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{Cursor, Read};

use gridsync_core::doc::registry::{limits, NewPerson, PersonDoc, PersonEdit, Tag};
use gridsync_core::pii::{Phone, ResidentId, Sex};
use gridsync_core::registry::PersonFilter;
use gridsync_core::{access, DeviceId, DocContent, DocId, Identity, RegionCode, RegionLevel, User};

use crate::relay::{DraftOutcome, Relay, RelayError};

/// Largest file accepted, in bytes.
pub const MAX_FILE_BYTES: usize = 20 * 1024 * 1024;
/// Most data rows in one file.
pub const MAX_ROWS: usize = 200_000;
/// Most columns read from a row.
pub const MAX_COLUMNS: usize = 30;
/// Most bytes an XLSX file may unpack to (all its parts together).
const MAX_UNZIPPED_BYTES: u64 = 128 * 1024 * 1024;
/// Most parts in an XLSX file.
const MAX_ZIP_ENTRIES: usize = 1_000;
/// Drafts stored per push.
const BATCH: usize = 1_000;
/// Rows of an error report kept; the rest are counted.
pub const MAX_REPORTED: usize = 1_000;
/// The relationship that marks the head of household.
pub const HEAD: &str = "户主";

/// A roster file's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// UTF-8 CSV (a BOM is allowed), comma-separated.
    Csv,
    /// An Excel workbook; the first sheet is read.
    Xlsx,
}

impl Format {
    /// The format a file name says (`.csv`, `.xlsx`).
    pub fn from_file_name(name: &str) -> Option<Format> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            Some(Format::Csv)
        } else if lower.ends_with(".xlsx") {
            Some(Format::Xlsx)
        } else {
            None
        }
    }

    /// `csv` or `xlsx`.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "csv" => Some(Format::Csv),
            "xlsx" => Some(Format::Xlsx),
            _ => None,
        }
    }
}

/// The columns of a roster, by their Chinese headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Col {
    Grid,
    Address,
    Name,
    Sex,
    IdNumber,
    Phone,
    Relation,
    Tags,
    Notes,
}

impl Col {
    const ALL: [Col; 9] = [
        Col::Grid,
        Col::Address,
        Col::Name,
        Col::Sex,
        Col::IdNumber,
        Col::Phone,
        Col::Relation,
        Col::Tags,
        Col::Notes,
    ];

    fn header(self) -> &'static str {
        match self {
            Col::Grid => "网格编码",
            Col::Address => "地址",
            Col::Name => "姓名",
            Col::Sex => "性别",
            Col::IdNumber => "身份证号",
            Col::Phone => "联系电话",
            Col::Relation => "与户主关系",
            Col::Tags => "特殊人群",
            Col::Notes => "备注",
        }
    }

    fn required(self) -> bool {
        matches!(
            self,
            Col::Grid | Col::Address | Col::Name | Col::IdNumber | Col::Relation
        )
    }

    fn max_chars(self) -> usize {
        match self {
            Col::Grid => 15,
            Col::Address => limits::ADDRESS,
            Col::Name => limits::NAME,
            Col::Sex => 2,
            Col::IdNumber => 18,
            Col::Phone => 20,
            Col::Relation => limits::RELATION,
            Col::Tags => 100,
            Col::Notes => limits::NOTES,
        }
    }
}

/// The headers of a roster, in the order of the sample file.
pub fn headers() -> Vec<&'static str> {
    Col::ALL.iter().map(|c| c.header()).collect()
}

/// What is wrong with one row of a file (row numbers as the spreadsheet shows
/// them: the header is row 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// The row.
    pub row: usize,
    /// The column's header, if one column is at fault.
    pub column: Option<&'static str>,
    /// What is wrong, in Chinese; never an ID or phone number.
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "第 {} 行「{}」：{}", self.row, c, self.message),
            None => write!(f, "第 {} 行：{}", self.row, self.message),
        }
    }
}

/// Why a file was not imported.
#[derive(Debug)]
pub enum ImportError {
    /// The file as a whole cannot be read (size, encoding, format, headers).
    File(String),
    /// Rows are invalid: nothing was imported. At most [`MAX_REPORTED`] are
    /// listed; `total` counts them all.
    Rows {
        /// The problems, by row.
        errors: Vec<RowError>,
        /// How many there are in all.
        total: usize,
    },
    /// The user may not import (unknown user, or a department handler).
    Refused(String),
    /// Storing failed part of the way: what was stored stays (importing the same
    /// file again completes it and changes nothing else).
    Stopped {
        /// What was stored before the failure.
        done: ImportSummary,
        /// Why it stopped.
        reason: String,
    },
    /// The relay failed.
    Relay(RelayError),
}

impl From<RelayError> for ImportError {
    fn from(e: RelayError) -> Self {
        ImportError::Relay(e)
    }
}

impl ImportError {
    /// The report, one line each, in Chinese.
    pub fn lines(&self) -> Vec<String> {
        match self {
            ImportError::File(m) => vec![format!("文件无法导入：{m}")],
            ImportError::Rows { errors, total } => {
                let mut lines = vec![format!(
                    "文件中有 {total} 处错误，未导入任何数据。请改正后重新导入整个文件："
                )];
                lines.extend(errors.iter().map(ToString::to_string));
                if *total > errors.len() {
                    lines.push(format!("……另有 {} 处错误未列出", total - errors.len()));
                }
                lines
            }
            ImportError::Refused(m) => vec![format!("无权导入：{m}")],
            ImportError::Stopped { done, reason } => vec![
                format!("导入中途停止：{reason}"),
                format!(
                    "已保存：新建 {} 户、{} 人，更新 {} 人。重新导入同一文件可补全，已导入的不会重复。",
                    done.households_new, done.persons_new, done.persons_updated
                ),
            ],
            ImportError::Relay(e) => vec![format!("服务器出错，未完成导入：{e}")],
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join("\n"))
    }
}

impl std::error::Error for ImportError {}

/// What an import did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Data rows read.
    pub rows: usize,
    /// Households registered.
    pub households_new: usize,
    /// Persons registered.
    pub persons_new: usize,
    /// Existing persons changed (facts, tags, household).
    pub persons_updated: usize,
    /// Rows that matched a person and changed nothing.
    pub persons_unchanged: usize,
    /// Households whose head was set.
    pub heads_set: usize,
}

impl ImportSummary {
    /// One line, in Chinese.
    pub fn line(&self) -> String {
        format!(
            "导入完成：共 {} 行；新建 {} 户、{} 人；更新 {} 人；{} 人无变化；设定户主 {} 户。",
            self.rows,
            self.households_new,
            self.persons_new,
            self.persons_updated,
            self.persons_unchanged,
            self.heads_set
        )
    }
}

// ---------------------------------------------------------------------------
// Reading a file into rows of text.

/// A marker for a number Excel stored with fewer digits than an ID number has.
const LOST_DIGITS: &str = "\u{0}number";

/// The rows of a roster or an export (the header first), each cell as text,
/// within the same limits as an import.
pub fn read_rows(bytes: &[u8], format: Format) -> Result<Vec<Vec<String>>, ImportError> {
    read_table(bytes, format)
}

/// The rows of a file (the header first), each cell as text.
fn read_table(bytes: &[u8], format: Format) -> Result<Vec<Vec<String>>, ImportError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ImportError::File(format!(
            "文件大小 {:.1} MB，超过上限 {} MB；请分成几个文件导入",
            bytes.len() as f64 / 1_048_576.0,
            MAX_FILE_BYTES / 1_048_576
        )));
    }
    if bytes.is_empty() {
        return Err(ImportError::File("文件是空的".into()));
    }
    let rows = match format {
        Format::Csv => read_csv(bytes)?,
        Format::Xlsx => read_xlsx(bytes)?,
    };
    Ok(rows)
}

fn too_many_rows() -> ImportError {
    ImportError::File(format!("数据超过 {MAX_ROWS} 行；请分成几个文件导入"))
}

fn too_many_columns() -> ImportError {
    ImportError::File(format!("列数超过 {MAX_COLUMNS} 列；请只保留模板中的列"))
}

fn read_csv(bytes: &[u8]) -> Result<Vec<Vec<String>>, ImportError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if std::str::from_utf8(bytes).is_err() {
        return Err(ImportError::File(
            "不是 UTF-8 编码的 CSV（Excel 默认另存的 CSV 是 GBK 编码）：请在 Excel 中选择“另存为 → CSV UTF-8（逗号分隔）”，或直接上传 .xlsx 文件".into(),
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|_| {
            ImportError::File(format!(
                "第 {} 行附近的 CSV 格式有误（引号不配对？）",
                i + 1
            ))
        })?;
        if rows.len() > MAX_ROWS {
            return Err(too_many_rows());
        }
        if record.len() > MAX_COLUMNS {
            return Err(too_many_columns());
        }
        rows.push(record.iter().map(str::to_owned).collect());
    }
    Ok(rows)
}

/// Unpack every part of the workbook once, counting, before the XLSX reader
/// does: its shared strings are read whole, so a small file that unpacks to
/// gigabytes must be refused first.
fn check_zip(bytes: &[u8]) -> Result<(), ImportError> {
    let not_xlsx = || ImportError::File("不是有效的 .xlsx 文件（请用 Excel 另存为 .xlsx）".into());
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|_| not_xlsx())?;
    if zip.len() > MAX_ZIP_ENTRIES {
        return Err(not_xlsx());
    }
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let entry = zip.by_index(i).map_err(|_| not_xlsx())?;
        let left = MAX_UNZIPPED_BYTES - total;
        let n = std::io::copy(&mut entry.take(left + 1), &mut std::io::sink())
            .map_err(|_| not_xlsx())?;
        total += n;
        if total > MAX_UNZIPPED_BYTES {
            return Err(ImportError::File(format!(
                "文件解压后超过 {} MB，无法导入",
                MAX_UNZIPPED_BYTES / 1_048_576
            )));
        }
    }
    Ok(())
}

fn read_xlsx(bytes: &[u8]) -> Result<Vec<Vec<String>>, ImportError> {
    use calamine::{DataRef, Reader, Xlsx};
    check_zip(bytes)?;
    let not_xlsx = || ImportError::File("不是有效的 .xlsx 文件（请用 Excel 另存为 .xlsx）".into());
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(|_| not_xlsx())?;
    let first = book
        .sheet_names()
        .into_iter()
        .next()
        .ok_or_else(|| ImportError::File("工作簿中没有工作表".into()))?;
    let mut cells = book
        .worksheet_cells_reader(&first)
        .map_err(|_| not_xlsx())?;
    let mut rows: Vec<Vec<String>> = Vec::new();
    // Cells one by one: a sheet whose used range claims a million rows costs
    // nothing until its cells are there, and each is checked against the limits.
    while let Some(cell) = cells.next_cell().map_err(|_| not_xlsx())? {
        let (r, c) = cell.get_position();
        let (r, c) = (r as usize, c as usize);
        if r > MAX_ROWS {
            return Err(too_many_rows());
        }
        if c >= MAX_COLUMNS {
            return Err(too_many_columns());
        }
        let text = match cell.get_value() {
            DataRef::Empty => continue,
            DataRef::String(s) => s.clone(),
            DataRef::SharedString(s) => (*s).to_owned(),
            DataRef::Int(i) => i.to_string(),
            // Whole numbers Excel holds exactly; beyond 15 digits (an ID number
            // typed into a number cell) the last digits are already gone.
            DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => (*f as i64).to_string(),
            DataRef::Float(f) if f.fract() == 0.0 => LOST_DIGITS.to_owned(),
            DataRef::Float(f) => f.to_string(),
            DataRef::Bool(b) => b.to_string(),
            DataRef::DateTime(d) => d.as_f64().to_string(),
            DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
            DataRef::Error(_) => "#错误".to_owned(),
        };
        if rows.len() <= r {
            rows.resize_with(r + 1, Vec::new);
        }
        let row = &mut rows[r];
        if row.len() <= c {
            row.resize(c + 1, String::new());
        }
        row[c] = text;
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------
// Validating rows.

/// A valid row.
struct Row {
    line: usize,
    grid: RegionCode,
    address: String,
    name: String,
    id: ResidentId,
    phone: Option<Phone>,
    relation: String,
    tags: Vec<Tag>,
    notes: String,
}

/// Addresses compare with runs of spaces as one and no spaces at the ends.
fn normal_address(a: &str) -> String {
    a.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn parse_tags(text: &str) -> Result<Vec<Tag>, String> {
    let mut tags = Vec::new();
    for (i, part) in text
        .split(['、', ',', '，', ';', '；', '/', ' ', '　'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        let tag = Tag::ALL
            .into_iter()
            .find(|t| t.label_zh() == part || t.as_str() == part)
            .ok_or_else(|| {
                let known: Vec<&str> = Tag::ALL.iter().map(|t| t.label_zh()).collect();
                format!(
                    "第 {} 项不是已知的特殊人群；可填：{}（多项用顿号分隔）",
                    i + 1,
                    known.join("、")
                )
            })?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags.sort();
    Ok(tags)
}

/// Map the header row to columns.
fn header_map(header: &[String]) -> Result<HashMap<Col, usize>, ImportError> {
    let mut map = HashMap::new();
    for (i, h) in header.iter().enumerate() {
        let h = h.trim().trim_start_matches('\u{feff}').trim();
        if h.is_empty() {
            continue;
        }
        let col = Col::ALL
            .into_iter()
            .find(|c| c.header() == h)
            .ok_or_else(|| {
                // The cell is not repeated: a file without a header row would
                // have a resident's name or ID number here.
                ImportError::File(format!(
                    "第 1 行（表头）第 {} 列不是模板中的列；可用的列：{}",
                    i + 1,
                    headers().join("、")
                ))
            })?;
        if map.insert(col, i).is_some() {
            return Err(ImportError::File(format!(
                "表头中「{}」出现了两次",
                col.header()
            )));
        }
    }
    let missing: Vec<&str> = Col::ALL
        .into_iter()
        .filter(|c| c.required() && !map.contains_key(c))
        .map(Col::header)
        .collect();
    if !missing.is_empty() {
        return Err(ImportError::File(format!(
            "第 1 行应为表头，缺少必填列：{}",
            missing.join("、")
        )));
    }
    Ok(map)
}

/// Check one row; its problems go to `errors`.
fn check_row(
    line: usize,
    cells: &[String],
    cols: &HashMap<Col, usize>,
    dir: &gridsync_core::Directory,
    user: &User,
    errors: &mut Vec<RowError>,
) -> Option<Row> {
    let before = errors.len();
    let mut err = |col: Col, message: String| {
        errors.push(RowError {
            row: line,
            column: Some(col.header()),
            message,
        })
    };
    let cell = |col: Col| -> &str {
        cols.get(&col)
            .and_then(|i| cells.get(*i))
            .map(|s| s.trim())
            .unwrap_or("")
    };
    let mut text = |col: Col| -> Option<String> {
        let v = cell(col);
        let n = v.chars().count();
        if n > col.max_chars() {
            err(
                col,
                format!("长度为 {n} 个字符，最多 {} 个", col.max_chars()),
            );
            return None;
        }
        if v.is_empty() && col.required() {
            let hint = if col == Col::Relation {
                "（户主本人请填“户主”）"
            } else {
                ""
            };
            err(col, format!("必填，不能为空{hint}"));
            return None;
        }
        Some(v.to_owned())
    };
    let grid_text = text(Col::Grid);
    let address = text(Col::Address).map(|a| normal_address(&a));
    let name = text(Col::Name);
    let sex_text = text(Col::Sex);
    let id_text = cell(Col::IdNumber).to_owned();
    let phone_text = text(Col::Phone);
    let relation = text(Col::Relation);
    let tags_text = text(Col::Tags);
    let notes = text(Col::Notes);

    let grid = grid_text.and_then(|g| match g.parse::<RegionCode>() {
        Err(_) => {
            err(Col::Grid, "应为 15 位数字的网格编码".into());
            None
        }
        Ok(code) => match dir.region(&code) {
            None => {
                err(Col::Grid, format!("目录中没有网格 {code}"));
                None
            }
            Some(r) if r.level != RegionLevel::Grid => {
                err(Col::Grid, format!("{code} 不是网格，而是更大的区域"));
                None
            }
            Some(_) if access::check_registry_writer(user, &code).is_err() => {
                err(Col::Grid, format!("网格 {code} 不在您的管辖范围内"));
                None
            }
            Some(_) => Some(code),
        },
    });
    let id = if id_text == LOST_DIGITS {
        err(
            Col::IdNumber,
            "单元格是数字格式，Excel 已丢失末几位：请将该列设为文本格式后重新录入".into(),
        );
        None
    } else if id_text.is_empty() {
        err(Col::IdNumber, "必填，不能为空".into());
        None
    } else {
        match id_text.parse::<ResidentId>() {
            Ok(id) => Some(id),
            Err(e) => {
                err(Col::IdNumber, e.zh());
                None
            }
        }
    };
    if let (Some(sex), Some(id)) = (sex_text.filter(|s| !s.is_empty()), &id) {
        let given = match sex.as_str() {
            "男" => Some(Sex::Male),
            "女" => Some(Sex::Female),
            _ => {
                err(Col::Sex, "应填“男”或“女”".into());
                None
            }
        };
        if given.is_some_and(|s| s != id.sex()) {
            err(Col::Sex, "与身份证号中的性别不符".into());
        }
    }
    let phone = match phone_text.filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => match p.parse::<Phone>() {
            Ok(p) => Some(p),
            Err(e) => {
                err(Col::Phone, e.zh());
                None
            }
        },
    };
    let tags = match tags_text.map(|t| parse_tags(&t)) {
        Some(Ok(tags)) => tags,
        Some(Err(m)) => {
            err(Col::Tags, m);
            Vec::new()
        }
        None => Vec::new(),
    };
    if errors.len() > before {
        return None;
    }
    Some(Row {
        line,
        grid: grid?,
        address: address?,
        name: name?,
        id: id?,
        phone,
        relation: relation?,
        tags,
        notes: notes?,
    })
}

// ---------------------------------------------------------------------------
// Planning: what the valid rows change.

/// A household of the plan: one already registered, or the n-th new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum HouseholdRef {
    Existing(usize),
    New(usize),
}

/// A person of the plan: one already registered, or the n-th new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum PersonRef {
    Existing(usize),
    New(usize),
}

#[derive(Default)]
struct Plan {
    rows: usize,
    unchanged: usize,
    /// Existing documents referred to, by index.
    households: Vec<DocId>,
    persons: Vec<PersonDoc>,
    new_households: Vec<(RegionCode, String)>,
    new_persons: Vec<(NewPerson, HouseholdRef, String)>,
    edits: Vec<(usize, PersonEdit)>,
    moves: Vec<(usize, HouseholdRef, String)>,
    heads: Vec<(HouseholdRef, PersonRef)>,
}

impl Plan {
    fn updated(&self) -> usize {
        let mut ids: HashSet<usize> = self.edits.iter().map(|(i, _)| *i).collect();
        ids.extend(self.moves.iter().map(|(i, _, _)| *i));
        ids.len()
    }
}

/// Read, validate and plan a file for `user`: nothing is written.
fn plan(relay: &Relay, user: &User, bytes: &[u8], format: Format) -> Result<Plan, ImportError> {
    if user.role == gridsync_core::Role::DepartmentHandler {
        return Err(ImportError::Refused(
            "部门处置人员不能查看或维护网格基础信息".into(),
        ));
    }
    let table = read_table(bytes, format)?;
    let mut lines = table
        .iter()
        .enumerate()
        .filter(|(_, r)| r.iter().any(|c| !c.trim().is_empty()));
    let Some((_, header)) = lines.next() else {
        return Err(ImportError::File("文件中没有表头和数据".into()));
    };
    let cols = header_map(header)?;
    let engine = relay.engine();
    let dir = engine.directory().map_err(RelayError::internal)?;
    let mut errors = Vec::new();
    let mut rows = Vec::new();
    for (i, cells) in lines {
        if let Some(row) = check_row(i + 1, cells, &cols, &dir, user, &mut errors) {
            rows.push(row);
        }
    }
    if rows.is_empty() && errors.is_empty() {
        return Err(ImportError::File("表头之后没有数据行".into()));
    }

    // Duplicates within the file, and more than one head per household.
    let mut by_id: HashMap<&str, usize> = HashMap::new();
    let mut heads: HashMap<(&RegionCode, &str), usize> = HashMap::new();
    for row in &rows {
        if let Some(first) = by_id.insert(row.id.full(), row.line) {
            errors.push(RowError {
                row: row.line,
                column: Some(Col::IdNumber.header()),
                message: format!("与第 {first} 行的身份证号重复"),
            });
            by_id.insert(row.id.full(), first);
        }
        if row.relation == HEAD {
            if let Some(first) = heads.insert((&row.grid, &row.address), row.line) {
                errors.push(RowError {
                    row: row.line,
                    column: Some(Col::Relation.header()),
                    message: format!("同一户（同一网格、同一地址）已有户主（第 {first} 行）"),
                });
                heads.insert((&row.grid, &row.address), first);
            }
        }
    }

    // Against the registry: persons by ID number (candidates by the masked number
    // and its last six characters, then the document's full number).
    let keys = engine.registry_keys().map_err(RelayError::internal)?;
    let mut candidates: HashMap<(String, String), Vec<DocId>> = HashMap::new();
    for (id, _, masked, suffix) in keys.persons {
        candidates.entry((masked, suffix)).or_default().push(id);
    }
    let mut households: HashMap<(RegionCode, String), (DocId, Option<DocId>)> = HashMap::new();
    let mut existing_households = keys.households;
    existing_households.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    for (id, grid, address, head) in existing_households {
        households
            .entry((grid, normal_address(&address)))
            .or_insert((id, head));
    }
    let mut matched: Vec<Option<PersonDoc>> = Vec::with_capacity(rows.len());
    for row in &rows {
        let key = (row.id.masked(), row.id.suffix(6).to_owned());
        let mut same = Vec::new();
        for doc in candidates.get(&key).into_iter().flatten() {
            if let Some(DocContent::Person(p)) =
                engine.read_doc(doc).map_err(RelayError::internal)?
            {
                if p.id_number.as_ref().is_some_and(|n| n == &row.id) {
                    same.push(p);
                }
            }
        }
        let err = |message: &str| RowError {
            row: row.line,
            column: Some(Col::IdNumber.header()),
            message: message.to_owned(),
        };
        // A number registered outside the importer's region is not described:
        // the report would tell anyone who may import whether a person is
        // registered anywhere. The match is on record for those who look.
        let scope = access::scope_of(user);
        if let Some(outside) = same.iter().find(|p| !scope.covers(&p.grid)) {
            if let Err(e) = crate::audit::record(
                &relay.data_folder(),
                &user.id,
                "import_conflict",
                &outside.id,
            ) {
                tracing::error!(error = %e, "audit log");
            }
            errors.push(err("无法导入此行，请联系上级部门核对"));
            matched.push(None);
            continue;
        }
        match same.len() {
            0 => matched.push(None),
            1 if same[0].grid != row.grid => {
                errors.push(err(
                    "该身份证号已登记在其他网格；跨网格迁移请先在原网格办理",
                ));
                matched.push(None);
            }
            1 => matched.push(same.pop()),
            _ => {
                errors.push(err(
                    "登记中已有多条相同身份证号的记录，请先在系统中核对合并",
                ));
                matched.push(None);
            }
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.row);
        let total = errors.len();
        errors.truncate(MAX_REPORTED);
        return Err(ImportError::Rows { errors, total });
    }

    // What changes.
    let mut plan = Plan {
        rows: rows.len(),
        ..Plan::default()
    };
    let mut household_refs: HashMap<(RegionCode, String), (HouseholdRef, Option<DocId>)> =
        HashMap::new();
    for row in &rows {
        let key = (row.grid.clone(), row.address.clone());
        if household_refs.contains_key(&key) {
            continue;
        }
        let r = match households.get(&key) {
            Some((id, head)) => {
                plan.households.push(id.clone());
                (
                    HouseholdRef::Existing(plan.households.len() - 1),
                    head.clone(),
                )
            }
            None => {
                plan.new_households.push(key.clone());
                (HouseholdRef::New(plan.new_households.len() - 1), None)
            }
        };
        household_refs.insert(key, r);
    }
    for (row, existing) in rows.into_iter().zip(matched) {
        let key = (row.grid.clone(), row.address.clone());
        let (household, head) = household_refs[&key].clone();
        let household_id = match household {
            HouseholdRef::Existing(i) => Some(plan.households[i].clone()),
            HouseholdRef::New(_) => None,
        };
        let person = match existing {
            None => {
                plan.new_persons.push((
                    NewPerson {
                        grid: row.grid.clone(),
                        name: row.name.clone(),
                        id_number: Some(row.id.clone()),
                        sex: None,
                        born: None,
                        phone: row.phone.clone(),
                        household: None,
                        tags: row.tags.clone(),
                        notes: row.notes.clone(),
                    },
                    household,
                    row.relation.clone(),
                ));
                PersonRef::New(plan.new_persons.len() - 1)
            }
            Some(p) => {
                let mut edit = PersonEdit::default();
                if p.name != row.name {
                    edit.name = Some(row.name.clone());
                }
                if row.phone.is_some() && p.phone != row.phone {
                    edit.phone = Some(row.phone.clone());
                }
                if !row.notes.is_empty() && p.notes != row.notes {
                    edit.notes = Some(row.notes.clone());
                }
                edit.add_tags = row
                    .tags
                    .iter()
                    .filter(|t| !p.tags.contains(t))
                    .copied()
                    .collect();
                let changed_facts = edit != PersonEdit::default();
                let moved = match (&p.household, &household_id) {
                    (Some((h, rel)), Some(want)) => h != want || *rel != row.relation,
                    _ => true,
                };
                let doc_id = p.id.clone();
                plan.persons.push(p);
                let i = plan.persons.len() - 1;
                if changed_facts {
                    plan.edits.push((i, edit));
                }
                if moved {
                    plan.moves.push((i, household, row.relation.clone()));
                }
                let head_is_this = head.as_ref() == Some(&doc_id);
                if !changed_facts && !moved && (row.relation != HEAD || head_is_this) {
                    plan.unchanged += 1;
                }
                PersonRef::Existing(i)
            }
        };
        if row.relation == HEAD {
            let already = matches!(
                (person, &head),
                (PersonRef::Existing(i), Some(h)) if plan.persons[i].id == *h
            );
            if !already {
                plan.heads.push((household, person));
            }
        }
    }
    Ok(plan)
}

// ---------------------------------------------------------------------------
// Applying a plan.

/// Draft and store, a batch at a time, each batch under the console's write lock.
fn store_all(
    relay: &Relay,
    author: &Identity,
    user: &User,
    work: Work<'_>,
    done: &ImportSummary,
) -> Result<Vec<DocId>, ImportError> {
    let mut ids = Vec::with_capacity(work.len());
    let mut work = work.into_iter().peekable();
    while work.peek().is_some() {
        let _one_at_a_time = relay.console_writes();
        let mut drafts = Vec::with_capacity(BATCH);
        for draft in work.by_ref().take(BATCH) {
            let (id, bytes) = draft(relay.engine()).map_err(|e| ImportError::Stopped {
                done: *done,
                reason: e.to_string(),
            })?;
            drafts.push((id, bytes));
        }
        let batch_ids: Vec<DocId> = drafts.iter().map(|(id, _)| id.clone()).collect();
        let outcomes = relay
            .store_drafts(author.device, user, drafts)
            .map_err(|e| ImportError::Stopped {
                done: *done,
                reason: e.to_string(),
            })?;
        if let Some(DraftOutcome::Refused(reason)) = outcomes
            .iter()
            .find(|o| matches!(o, DraftOutcome::Refused(_)))
        {
            return Err(ImportError::Stopped {
                done: *done,
                reason: reason.clone(),
            });
        }
        ids.extend(batch_ids);
    }
    Ok(ids)
}

type Work<'a> =
    Vec<Box<dyn FnOnce(&gridsync_core::Engine) -> gridsync_core::Result<(DocId, Vec<u8>)> + 'a>>;

fn apply(
    relay: &Relay,
    author: &Identity,
    user: &User,
    plan: Plan,
) -> Result<ImportSummary, ImportError> {
    let mut done = ImportSummary {
        rows: plan.rows,
        persons_unchanged: plan.unchanged,
        ..Default::default()
    };
    // 1. New households.
    let work: Work<'_> = plan
        .new_households
        .iter()
        .map(|(grid, address)| {
            Box::new(move |e: &gridsync_core::Engine| {
                e.draft_register_household(author, grid.clone(), address)
            }) as _
        })
        .collect();
    let new_households = store_all(relay, author, user, work, &done)?;
    done.households_new = new_households.len();
    let household_id = |r: HouseholdRef| -> DocId {
        match r {
            HouseholdRef::Existing(i) => plan.households[i].clone(),
            HouseholdRef::New(i) => new_households[i].clone(),
        }
    };
    // 2. New persons, in their households, and edits of existing persons.
    let mut work: Work<'_> = Vec::new();
    for (person, household, relation) in &plan.new_persons {
        let person = NewPerson {
            household: Some((household_id(*household), relation.clone())),
            ..person.clone()
        };
        work.push(Box::new(move |e: &gridsync_core::Engine| {
            e.draft_register_person(author, person)
        }));
    }
    let edits_start = work.len();
    for (i, edit) in &plan.edits {
        let id = plan.persons[*i].id.clone();
        let edit = edit.clone();
        work.push(Box::new(move |e: &gridsync_core::Engine| {
            e.draft_edit_person(author, &id, edit).map(|b| (id, b))
        }));
    }
    let stored = store_all(relay, author, user, work, &done)?;
    let new_persons: Vec<DocId> = stored[..edits_start].to_vec();
    done.persons_new = new_persons.len();
    // 3. Existing persons moving household or relationship.
    let work: Work<'_> = plan
        .moves
        .iter()
        .map(|(i, household, relation)| {
            let id = plan.persons[*i].id.clone();
            let to = (household_id(*household), relation.clone());
            Box::new(move |e: &gridsync_core::Engine| {
                e.draft_move_person(author, &id, Some(to)).map(|b| (id, b))
            }) as _
        })
        .collect();
    store_all(relay, author, user, work, &done)?;
    done.persons_updated = plan.updated();
    // 4. Heads of household.
    let work: Work<'_> = plan
        .heads
        .iter()
        .map(|(household, person)| {
            let h = household_id(*household);
            let p = match person {
                PersonRef::Existing(i) => plan.persons[*i].id.clone(),
                PersonRef::New(i) => new_persons[*i].clone(),
            };
            Box::new(move |e: &gridsync_core::Engine| {
                e.draft_set_head(author, &h, Some(&p)).map(|b| (h, b))
            }) as _
        })
        .collect();
    store_all(relay, author, user, work, &done)?;
    done.heads_set = plan.heads.len();
    Ok(done)
}

/// Import a roster as directory user `user` from the command line: drafted on a
/// device of its own for this import (so its changes can never take a sequence
/// number a console session is using), checked and stored like a phone's.
pub fn import_as_user(
    relay: &Relay,
    user: &str,
    bytes: &[u8],
    format: Format,
) -> Result<ImportSummary, ImportError> {
    let id = user
        .parse()
        .map_err(|_| ImportError::Refused(format!("目录中没有用户 {user}")))?;
    relay.catch_up()?;
    let user = relay
        .engine()
        .user(&id)
        .map_err(|_| ImportError::Refused(format!("目录中没有用户 {user}")))?;
    let author = Identity {
        user: user.id.clone(),
        device: DeviceId::random(),
    };
    import(relay, &author, &user, bytes, format)
}

/// Import a roster as a signed-in console user, through the account's device.
pub fn import_as_console(
    relay: &Relay,
    who: &crate::relay::ConsoleUser,
    bytes: &[u8],
    format: Format,
) -> Result<ImportSummary, ImportError> {
    let author = Identity {
        user: who.user.id.clone(),
        device: who.device,
    };
    import(relay, &author, &who.user, bytes, format)
}

fn import(
    relay: &Relay,
    author: &Identity,
    user: &User,
    bytes: &[u8],
    format: Format,
) -> Result<ImportSummary, ImportError> {
    // One import at a time in this process, from planning to the last batch:
    // two imports of the same file planned side by side would both register its
    // new persons. It also bounds the memory imports take.
    static IMPORTS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = IMPORTS.lock().unwrap_or_else(|e| e.into_inner());
    let started = std::time::Instant::now();
    let plan = plan(relay, user, bytes, format)?;
    let summary = apply(relay, author, user, plan)?;
    tracing::info!(
        rows = summary.rows,
        households_new = summary.households_new,
        persons_new = summary.persons_new,
        persons_updated = summary.persons_updated,
        ms = started.elapsed().as_millis() as u64,
        "registry import"
    );
    Ok(summary)
}

// ---------------------------------------------------------------------------
// Export.

/// The export's headers.
const EXPORT_HEADERS: [&str; 10] = [
    "网格编码",
    "网格名称",
    "地址",
    "姓名",
    "性别",
    "出生年份",
    "身份证号（脱敏）",
    "联系电话（脱敏）",
    "与户主关系",
    "特殊人群",
];

/// A CSV cell that a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, or a
/// tab or carriage return before one) is prefixed with `'`.
pub fn csv_safe(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

/// The registry of `region` as `user` may see it (their whole region when
/// `None`), ID and phone numbers masked, as CSV (UTF-8 with a BOM, formula
/// characters neutralised) or XLSX. Notes are not exported.
pub fn export(
    relay: &Relay,
    user: &User,
    region: Option<&RegionCode>,
    format: Format,
) -> Result<Vec<u8>, RelayError> {
    let engine = relay.engine();
    let region = engine
        .registry_region_as(user, region)
        .map_err(|e| RelayError::Forbidden {
            code: "refused",
            message: e.to_string(),
        })?;
    let dir = engine.directory().map_err(RelayError::internal)?;
    let addresses: HashMap<DocId, String> = engine
        .registry_keys()
        .map_err(RelayError::internal)?
        .households
        .into_iter()
        .map(|(id, _, address, _)| (id, address))
        .collect();
    let mut rows: Vec<[String; 10]> = Vec::new();
    if let Some(region) = region {
        // On record before anything is read out.
        crate::audit::record_export(&relay.data_folder(), &user.id, &region)
            .map_err(RelayError::internal)?;
        let page = 1_000u32;
        let mut offset = 0u32;
        loop {
            let filter = PersonFilter {
                region: Some(region.clone()),
                limit: page,
                offset,
                ..Default::default()
            };
            let persons = engine
                .list_persons_as(user, &filter)
                .map_err(RelayError::internal)?;
            let n = persons.len() as u32;
            for p in persons {
                let (address, relation) = match &p.household {
                    Some((h, r)) => (addresses.get(h).cloned().unwrap_or_default(), r.clone()),
                    None => (String::new(), String::new()),
                };
                rows.push([
                    p.grid.to_string(),
                    dir.region(&p.grid)
                        .map(|r| r.name.clone())
                        .unwrap_or_default(),
                    address,
                    p.name.clone(),
                    match p.sex {
                        Some(Sex::Male) => "男".into(),
                        Some(Sex::Female) => "女".into(),
                        None => String::new(),
                    },
                    p.birth_year.map(|y| y.to_string()).unwrap_or_default(),
                    p.id_masked.clone().unwrap_or_default(),
                    p.phone_masked.clone().unwrap_or_default(),
                    relation,
                    p.tags
                        .iter()
                        .map(|t| t.label_zh())
                        .collect::<Vec<_>>()
                        .join("、"),
                ]);
            }
            if n < page {
                break;
            }
            offset += n;
        }
    }
    match format {
        Format::Csv => {
            let mut out = b"\xEF\xBB\xBF".to_vec();
            {
                let mut w = csv::Writer::from_writer(&mut out);
                w.write_record(EXPORT_HEADERS)
                    .map_err(RelayError::internal)?;
                for row in &rows {
                    w.write_record(row.iter().map(|c| csv_safe(c)))
                        .map_err(RelayError::internal)?;
                }
                w.flush().map_err(RelayError::internal)?;
            }
            Ok(out)
        }
        Format::Xlsx => {
            let mut table: Vec<Vec<String>> =
                vec![EXPORT_HEADERS.iter().map(|h| (*h).to_owned()).collect()];
            table.extend(rows.into_iter().map(Vec::from));
            xlsx_from_rows(&table).map_err(RelayError::internal)
        }
    }
}

/// A workbook of one sheet whose cells are `rows`, all as text (so a number
/// stays as typed and nothing is read as a formula). For exports, the sample
/// file and tests.
pub fn xlsx_from_rows(rows: &[Vec<String>]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("人口")?;
    let text = rust_xlsxwriter::Format::new().set_num_format("@");
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            sheet.write_string_with_format(r as u32, c as u16, cell, &text)?;
        }
    }
    book.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_neutralised() {
        for bad in ["=1+1", "+86", "-2", "@SUM(A1)", "\tx"] {
            assert!(csv_safe(bad).starts_with('\''), "{bad:?}");
        }
        assert_eq!(csv_safe("张三"), "张三");
    }

    #[test]
    fn tags_by_their_chinese_names() {
        assert_eq!(
            parse_tags("低保、独居老人").unwrap(),
            vec![Tag::ElderlyAlone, Tag::LowIncome]
        );
        assert!(parse_tags("贫困户").unwrap_err().contains("第 1 项"));
        assert!(parse_tags("").unwrap().is_empty());
    }

    #[test]
    fn a_sparse_xlsx_is_read_cell_by_cell() {
        let rows = vec![
            vec!["网格编码".to_owned(), "姓名".to_owned()],
            vec!["339901001001001".to_owned(), "张三".to_owned()],
        ];
        let bytes = xlsx_from_rows(&rows).unwrap();
        assert_eq!(read_xlsx(&bytes).unwrap(), rows);
    }
}
