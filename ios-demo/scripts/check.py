#!/usr/bin/env python3
"""Checks of the iOS demo that run without a Mac (nothing here compiles Swift).

- zh-Hans and en Localizable.strings / InfoPlist.strings parse and have the same
  keys with the same placeholders;
- every localization key written in the Swift sources exists;
- every status, action and role code the core can produce, every severity, list
  scope and worker action has its string (codes read from core/src and the Swift);
- Info.plist parses and carries the usage strings, translated in InfoPlist.strings;
  its background modes are those the app uses (location for patrols, fetch for the
  BGTaskScheduler refresh) and the refresh identifier the Swift registers is permitted;
- with the `tree_sitter` and `tree_sitter_swift` Python packages installed, every
  Swift file of the app parses without a syntax error (Generated/ is not checked:
  the grammar trips on its `#if` around attributes).

Usage: python3 ios-demo/scripts/check.py   (exit status 1 on any problem)
"""
import plistlib
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # ios-demo/
REPO = HERE.parent
APP = HERE / "GridsyncDemo"
LANGS = ("zh-Hans", "en")

problems = []


def problem(msg):
    problems.append(msg)


ENTRY = re.compile(r'^\s*"((?:[^"\\]|\\.)*)"\s*=\s*"((?:[^"\\]|\\.)*)"\s*;\s*$')
PLACEHOLDER = re.compile(r"%(?:\d+\$)?[@dfsu]|%%")


def read_strings(path):
    """A .strings file as a dict; comments and blank lines skipped, others must parse."""
    out = {}
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.strip().startswith("//"):
            continue
        m = ENTRY.match(line)
        if not m:
            problem(f"{path.relative_to(HERE)}:{n}: not a \"key\" = \"value\"; line")
            continue
        key, value = m.group(1), m.group(2)
        if key in out:
            problem(f"{path.relative_to(HERE)}: duplicate key {key}")
        out[key] = value
    return out


def compare(name):
    tables = {lang: read_strings(APP / f"{lang}.lproj" / name) for lang in LANGS}
    a, b = (tables[lang] for lang in LANGS)
    for key in sorted(set(a) ^ set(b)):
        problem(f"{name}: {key} is in only one language")
    for key in sorted(set(a) & set(b)):
        pa = sorted(PLACEHOLDER.findall(a[key]))
        pb = sorted(PLACEHOLDER.findall(b[key]))
        if pa != pb:
            problem(f"{name}: {key} has placeholders {pa} in zh-Hans but {pb} in en")
        if any(p not in ("%@", "%%") and not re.fullmatch(r"%\d+\$@", p) for p in pa):
            problem(f"{name}: {key} uses a placeholder other than %@ (L.f passes strings)")
    return a


strings = compare("Localizable.strings")
infoplist_strings = compare("InfoPlist.strings")

# Keys written in the Swift sources: literals of the form group.name… whose group is
# one of the table's groups (SF Symbol names and bundle ids have other first parts).
groups = {k.split(".")[0] for k in strings}
swift_files = sorted(p for p in APP.rglob("*.swift"))
literal = re.compile(r'"([a-z][A-Za-z]*(?:\.[A-Za-z0-9_]+)+)"')
for path in swift_files:
    for key in literal.findall(path.read_text(encoding="utf-8")):
        if key.split(".")[0] in groups and key not in strings:
            problem(f"{path.relative_to(HERE)}: key {key} is not in Localizable.strings")


def rust_codes(path, fn_name):
    """ASCII string literals returned by `fn <fn_name>` in a Rust source file."""
    text = (REPO / path).read_text(encoding="utf-8")
    m = re.search(r"fn " + fn_name + r"\(.*?\{(.*?)\n    \}", text, flags=re.S)
    if not m:
        problem(f"{path}: fn {fn_name} not found (the check needs updating)")
        return []
    return re.findall(r'=>\s*"([a-z_]+)"', m.group(1))


families = {
    "status": rust_codes("core/src/workflow.rs", "as_str"),
    "role": rust_codes("core/src/directory.rs", "as_str"),
    "action": [c for c in rust_codes("core/src/workflow.rs", "name") if c != "verify"]
    + ["verify.passed", "verify.failed"],
    "severity": rust_codes("core/src/doc/case.rs", "as_str"),
    "sync.phase": ["push", "pull", "photos"],
    "timeline.outcome": ["conflict", "refused"],
}
swift = {p.name: p.read_text(encoding="utf-8") for p in swift_files}


def swift_enum_cases(file, enum):
    m = re.search(r"enum " + enum + r"\b[^{]*\{(.*?)\n    \}", swift[file], flags=re.S)
    return re.findall(r"^\s*case (\w+)\s*$", m.group(1), flags=re.M) if m else []


families["cases.scope"] = swift_enum_cases("CaseListViewModel.swift", "Scope")
families["detail.action"] = swift_enum_cases("CaseDetailViewModel.swift", "WorkerAction")
for family, codes in families.items():
    if not codes:
        problem(f"no codes found for {family} (the check needs updating)")
    for code in codes:
        if f"{family}.{code}" not in strings:
            problem(f"Localizable.strings: {family}.{code} is missing")

info = plistlib.loads((APP / "Info.plist").read_bytes())
for key in (
    "NSCameraUsageDescription",
    "NSLocationWhenInUseUsageDescription",
    "NSPhotoLibraryUsageDescription",
    "NSLocalNetworkUsageDescription",
):
    if not info.get(key):
        problem(f"Info.plist: {key} is missing")
    if key not in infoplist_strings:
        problem(f"InfoPlist.strings: {key} is missing")
if info.get("CFBundleDevelopmentRegion") != "zh-Hans":
    problem("Info.plist: CFBundleDevelopmentRegion is not zh-Hans")
if "location" not in info.get("UIBackgroundModes", []):
    problem("Info.plist: UIBackgroundModes lacks location (patrols record in the background)")
if "fetch" not in info.get("UIBackgroundModes", []):
    problem("Info.plist: UIBackgroundModes lacks fetch (the background refresh task)")
background = swift.get("BackgroundSync.swift", "")
task_ids = re.findall(r'static let identifier = "([^"]+)"', background)
if not task_ids or "BGTaskScheduler.shared.register(" not in background:
    problem("BackgroundSync.swift: no BGTaskScheduler registration found (the check needs updating)")
permitted = info.get("BGTaskSchedulerPermittedIdentifiers", [])
for task_id in task_ids:
    if task_id not in permitted:
        problem(f"Info.plist: BGTaskSchedulerPermittedIdentifiers lacks {task_id}")
for task_id in permitted:
    if task_id not in task_ids:
        problem(f"Info.plist: BGTaskSchedulerPermittedIdentifiers names {task_id}, which the app never registers")

parsed = 0
try:
    import tree_sitter
    import tree_sitter_swift

    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_swift.language()))

    def first_error(node):
        if node.type == "ERROR" or node.is_missing:
            return node
        for child in node.children:
            found = first_error(child)
            if found:
                return found
        return None

    for path in swift_files:
        tree = parser.parse(path.read_bytes())
        bad = first_error(tree.root_node)
        if bad:
            row, col = bad.start_point
            problem(f"{path.relative_to(HERE)}:{row + 1}:{col + 1}: Swift syntax error ({bad.type})")
        parsed += 1
except ImportError:
    pass

for p in problems:
    print(p)
syntax = f"{parsed} Swift files parsed" if parsed else "Swift syntax not checked (no tree_sitter_swift)"
print(f"check: {len(strings)} strings, {len(swift_files)} Swift files, {syntax}, {len(problems)} problems")
sys.exit(1 if problems else 0)
