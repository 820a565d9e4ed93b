#!/usr/bin/env python3
"""Generate sample-directory.json: the reference data of one invented district.

Deterministic (fixed seed, standard library only). Usage, from the repo root:

    python3 core/data/gen_sample_directory.py

All place names, department names and personal names are invented.
"""
import json
import os
import random

SEED = 20240601
DISTRICT_CODE = "339901"  # invented code, not a real administrative division
DISTRICT_NAME = "青溪区"

# Towns: (name, [communities]). 街道 towns have 社区, 镇 towns have 村.
TOWNS = [
    ("临江街道", ["望湖社区", "临江社区", "柳岸社区", "新桥社区", "沙洲社区"]),
    ("青溪街道", ["青溪社区", "文昌社区", "兰苑社区", "枫林社区", "学府社区", "双井社区"]),
    ("东湖街道", ["东湖社区", "荷塘社区", "翠苑社区", "明珠社区"]),
    ("桃源镇", ["桃源村", "杏花村", "石门村", "龙潭村", "竹溪村"]),
    ("石桥镇", ["石桥村", "上坪村", "下洋村", "梅岭村", "白鹭村", "溪口村"]),
]
MIN_GRIDS, MAX_GRIDS = 8, 15

DEPARTMENTS = [
    ("water", "区水务局"),
    ("housing", "区住建局"),
    ("urban", "区城管局"),
    ("emergency", "区应急管理局"),
    ("police", "公安分局"),
    ("petition", "区信访局"),
    ("civil", "区民政局"),
    ("market", "区市场监管局"),
]
HANDLERS_PER_DEPT = 2
DISTRICT_DISPATCHERS = 2

FAMILY_NAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢钟姜崔谭陆范汪廖石金韦贾夏付方邹熊白孟秦邱侯江尹薛闫段雷龙黎史陶贺顾毛郝龚邵万覃武钱戴严莫孔向常汤康易乔赖文")
GIVEN_CHARS = list("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国志宏海燕亮琳雪梅婷晨宇浩然欣怡子涵嘉俊峰晓东春雨佳文斌凯丹蕾倩颖坤鑫琴慧")

# Taxonomy: (code, name, name_en, [(sub_code, name, name_en), ...])
TAXONOMY = [
    ("city", "城市管理", "City management", [
        ("garbage", "垃圾堆放", "Garbage dumping"),
        ("illegal_building", "违章搭建", "Illegal construction"),
        ("street_vendor", "占道经营", "Street vending on public roads"),
        ("illegal_parking", "乱停乱放", "Illegal parking"),
        ("road_damage", "道路破损", "Damaged road"),
        ("streetlight", "路灯损坏", "Broken streetlight"),
    ]),
    ("safety", "安全生产", "Work safety", [
        ("fire_exit", "消防通道堵塞", "Blocked fire exit"),
        ("gas", "燃气隐患", "Gas hazard"),
        ("electrical", "私拉乱接电线", "Unsafe electrical wiring"),
        ("ebike_charging", "电动车违规充电", "Unsafe e-bike charging"),
        ("hazmat", "危化品隐患", "Hazardous chemicals"),
        ("construction", "施工安全隐患", "Construction site hazard"),
    ]),
    ("security", "社会治安", "Public security", [
        ("theft", "盗窃线索", "Theft lead"),
        ("fraud", "电信诈骗", "Telecom fraud"),
        ("suspicious", "可疑人员", "Suspicious person"),
        ("gambling", "赌博线索", "Gambling lead"),
        ("public_order", "扰乱公共秩序", "Disturbing public order"),
    ]),
    ("petition", "信访稳定", "Petitions & stability", [
        ("wage_arrears", "拖欠工资", "Unpaid wages"),
        ("land", "征地拆迁", "Land acquisition & demolition"),
        ("group", "群体性诉求", "Collective appeal"),
        ("repeat", "重复信访", "Repeated petition"),
        ("risk", "稳定风险隐患", "Stability risk"),
    ]),
    ("dispute", "矛盾纠纷调解", "Dispute mediation", [
        ("neighbor", "邻里纠纷", "Neighbor dispute"),
        ("family", "婚姻家庭纠纷", "Marriage & family dispute"),
        ("property", "物业纠纷", "Property management dispute"),
        ("land", "土地纠纷", "Land dispute"),
        ("labor", "劳资纠纷", "Labor dispute"),
        ("consumer", "消费纠纷", "Consumer dispute"),
    ]),
    ("livelihood", "民生服务", "Livelihood services", [
        ("elderly", "独居老人帮扶", "Help for elderly living alone"),
        ("water_leak", "管道漏水", "Water pipe leak"),
        ("utility_outage", "停水停电", "Water or power outage"),
        ("disability", "残疾人帮扶", "Help for people with disabilities"),
        ("hardship", "困难群众救助", "Assistance for families in hardship"),
    ]),
]

# Deadline rules: (category, severity, hours). "*" matches anything.
# Days between visits per special group (三活、四知、六必访): weekly for those living
# alone, under correction or with a severe mental illness, monthly for the others.
# Points (积分) per event: a valid report, one handled on the spot, the bonus for a
# major (urgent) case, an invalid report, a household visit, a safety inspection.
POINTS_RULES = {
    "valid_report": 2,
    "handled_on_the_spot": 3,
    "major_case": 10,
    "invalid_report": -5,
    "visit": 1,
    "inspection": 2,
}

VISIT_RULES = [
    ("elderly_alone", 7),
    ("disabled", 30),
    ("low_income", 30),
    ("left_behind_child", 30),
    ("community_correction", 7),
    ("mental_illness", 7),
]

DEADLINE_RULES = [
    ("*", "*", 72),
    ("*", "low", 120),
    ("*", "normal", 72),
    ("*", "high", 24),
    ("*", "urgent", 4),
    ("safety", "high", 12),
    ("safety", "urgent", 2),
    ("security", "urgent", 2),
    ("petition", "high", 12),
    ("livelihood", "urgent", 8),
]


# Boundaries (WGS-84, [lon, lat]): every town a strip of four lattice columns from
# west to east, its communities bands of rows from north to south, each grid a run of
# cells in one row. Interior lattice points are jittered (a seed of their own, so the
# names above stay as they were), so the shapes look drawn rather than ruled; cells
# share their corners, so the grids tile their community with no gap or overlap.
# The first grid of the first community holds (30.2741, 120.1551), where the
# tests' reports are made.
WEST, NORTH = 120.1525, 30.2760
CELL_LON, CELL_LAT = 0.0040, 0.0030
COLUMNS = 4
JITTER = 0.2


def lattice(rng, west, rows):
    """Corner points [row][col] of a town strip `rows` cells tall."""
    pts = []
    for r in range(rows + 1):
        row = []
        for c in range(COLUMNS + 1):
            lon = west + c * CELL_LON
            lat = NORTH - r * CELL_LAT
            if 0 < c < COLUMNS:
                lon += rng.uniform(-JITTER, JITTER) * CELL_LON
            if 0 < r < rows:
                lat += rng.uniform(-JITTER, JITTER) * CELL_LAT
            row.append([round(lon, 6), round(lat, 6)])
        pts.append(row)
    return pts


def band(pts, top, bottom, left, right):
    """The ring around rows top..bottom and columns left..right, clockwise."""
    ring = [pts[top][c] for c in range(left, right + 1)]
    ring += [pts[r][right] for r in range(top + 1, bottom + 1)]
    ring += [pts[bottom][c] for c in range(right - 1, left - 1, -1)]
    ring += [pts[r][left] for r in range(bottom - 1, top, -1)]
    return ring


def widths(n):
    """How the four cells of a row are shared by n grids (1 to 4)."""
    return {1: [4], 2: [2, 2], 3: [2, 1, 1], 4: [1, 1, 1, 1]}[n]


def add_boundaries(regions, towns):
    """Give every town, community and grid of `towns` ([(code, [(code, grids)])]) its
    boundary in `regions` (by code)."""
    rng = random.Random(SEED + 1)
    by_code = {r["code"]: r for r in regions}
    bottoms = []  # each town's southern edge, west to east
    for t, (town_code, communities) in enumerate(towns):
        rows = sum(-(-n // COLUMNS) for _, n in communities)
        pts = lattice(rng, WEST + t * COLUMNS * CELL_LON, rows)
        bottoms.append(pts[rows])
        by_code[town_code]["boundary"] = band(pts, 0, rows, 0, COLUMNS)
        top = 0
        for community_code, n in communities:
            height = -(-n // COLUMNS)
            by_code[community_code]["boundary"] = band(pts, top, top + height, 0, COLUMNS)
            g = 1
            for r in range(height):
                left = 0
                for w in widths(min(COLUMNS, n - r * COLUMNS)):
                    code = f"{community_code}{g:03d}"
                    by_code[code]["boundary"] = band(pts, top + r, top + r + 1, left, left + w)
                    left += w
                    g += 1
            top += height
    # The district: the straight northern edge, then the towns' southern edges
    # from east to west (stepping where two towns end at different rows).
    east = WEST + len(towns) * COLUMNS * CELL_LON
    ring = [[WEST, NORTH], [round(east, 6), NORTH]]
    for bottom in reversed(bottoms):
        ring += list(reversed(bottom))
    by_code[DISTRICT_CODE]["boundary"] = ring


def make_name_generator(rng):
    """Return a function producing unique invented names (family + 1-2 chars)."""
    used = set()

    def new_name():
        while True:
            given = "".join(rng.choice(GIVEN_CHARS) for _ in range(rng.choice((1, 2, 2))))
            name = rng.choice(FAMILY_NAMES) + given
            if name not in used:
                used.add(name)
                return name

    return new_name


def region(code, name, level):
    return {"code": code, "name": name, "level": level}


def user(uid, name, role, region_code, department=None):
    u = {"id": uid, "name": name, "role": role, "region": region_code}
    if department is not None:
        u["department"] = department
    return u


def build():
    rng = random.Random(SEED)
    new_name = make_name_generator(rng)

    regions = [region(DISTRICT_CODE, DISTRICT_NAME, "district")]
    users = []
    towns = []
    for t, (town_name, communities) in enumerate(TOWNS, start=1):
        town_code = f"{DISTRICT_CODE}{t:03d}"
        towns.append((town_code, []))
        regions.append(region(town_code, town_name, "town"))
        users.append(user(f"td-{town_code}", new_name(), "town_dispatcher", town_code))
        for c, community_name in enumerate(communities, start=1):
            community_code = f"{town_code}{c:03d}"
            regions.append(region(community_code, community_name, "community"))
            users.append(user(f"cd-{community_code}", new_name(), "community_dispatcher", community_code))
            grids = rng.randint(MIN_GRIDS, MAX_GRIDS)
            towns[-1][1].append((community_code, grids))
            for g in range(1, grids + 1):
                grid_code = f"{community_code}{g:03d}"
                regions.append(region(grid_code, f"{community_name}第{g}网格", "grid"))
                users.append(user(f"w-{grid_code}", new_name(), "grid_worker", grid_code))

    for i in range(1, DISTRICT_DISPATCHERS + 1):
        users.append(user(f"dd-{DISTRICT_CODE}-{i}", new_name(), "district_dispatcher", DISTRICT_CODE))
    for dept_id, _ in DEPARTMENTS:
        for i in range(1, HANDLERS_PER_DEPT + 1):
            users.append(user(f"h-{dept_id}-{i}", new_name(), "department_handler", DISTRICT_CODE, dept_id))
    users.append(user("admin", "系统管理员", "admin", DISTRICT_CODE))
    add_boundaries(regions, towns)

    return {
        "format": "gridsync-directory",
        "version": 1,
        "name": DISTRICT_NAME,
        "regions": regions,
        "departments": [{"id": d, "name": n, "region": DISTRICT_CODE} for d, n in DEPARTMENTS],
        "users": users,
        "taxonomy": [
            {
                "code": code,
                "name": name,
                "name_en": name_en,
                "subcategories": [
                    {"code": f"{code}.{sub}", "name": sub_name, "name_en": sub_en}
                    for sub, sub_name, sub_en in subs
                ],
            }
            for code, name, name_en, subs in TAXONOMY
        ],
        "deadline_rules": [
            {"category": c, "severity": s, "hours": h} for c, s, h in DEADLINE_RULES
        ],
        "visit_rules": [{"tag": t, "every_days": d} for t, d in VISIT_RULES],
        "points_rules": POINTS_RULES,
    }


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sample-directory.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(build(), f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
