//! `gridsync demo`: a day of one community's work. A relay (`gridsync serve`) starts
//! on the embedded default; two grid workers, the community dispatcher and two
//! department handlers are enrolled on simulated devices. The workers patrol and
//! report cases offline, reconnect and sync; the cases go round the six-step loop
//! through the relay.

use std::path::PathBuf;

use chrono::{Duration, NaiveDate, TimeZone};
use gridsync_core::index::local_offset;
use gridsync_core::{
    Action, Case, CaseFilter, DeviceId, Directory, DocId, Engine, Location, NewCase, Outcome,
    Person, Severity, Status, TrackPoint,
};

use crate::sim::{RelayProcess, SimClock};
use crate::Lang;

type DemoResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const WORKER_A: &str = "w-339901001001001";
const WORKER_B: &str = "w-339901001001002";
const DISPATCHER: &str = "cd-339901001001";
const WATER: &str = "h-water-1";
const URBAN: &str = "h-urban-1";

struct Out {
    lang: Lang,
}

impl Out {
    fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        match self.lang {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

fn new_case(
    title: &str,
    description: &str,
    category: &str,
    sub: &str,
    severity: Severity,
    at: (f64, f64),
) -> DemoResult<NewCase> {
    Ok(NewCase {
        title: title.into(),
        description: description.into(),
        category: category.parse()?,
        subcategory: Some(sub.parse()?),
        severity,
        grid: None,
        location: Some(Location {
            lat: at.0,
            lon: at.1,
            address: "青溪区临江街道望湖社区".into(),
        }),
        people: vec![],
        photos: vec![],
        links: Default::default(),
    })
}

/// Walk a patrol of `minutes`, one GPS fix every 5 s, recorded a minute at a time.
fn patrol(
    engine: &Engine,
    clock: &SimClock,
    minutes: i64,
    origin: (f64, f64),
    mut on_minute: impl FnMut(i64, &DocId) -> DemoResult,
) -> DemoResult<DocId> {
    let id = engine.start_patrol()?;
    for minute in 0..minutes {
        let start = clock.now();
        let points: Vec<TrackPoint> = (0..12)
            .map(|i| {
                let step = (minute * 12 + i) as f64;
                TrackPoint {
                    at: start + Duration::seconds(5 * i),
                    lat: origin.0 + 0.00001 * (step % 400.0),
                    lon: origin.1 + 0.00001 * (step / 400.0).floor(),
                }
            })
            .collect();
        engine.add_track_points(&id, &points)?;
        clock.advance(Duration::minutes(1));
        on_minute(minute, &id)?;
    }
    engine.end_patrol(&id)?;
    Ok(id)
}

/// Run the demo.
fn sync(e: &Engine) -> DemoResult<gridsync_core::sync::SyncReport> {
    Ok(e.sync(&mut |_| {})?)
}

/// Run the demo; with `keep`, leave the relay running afterwards.
pub fn run(data: Option<PathBuf>, lang: Lang, keep: bool) -> DemoResult {
    let out = Out { lang };
    let temp;
    let kept = data.is_some();
    let dir = match data {
        Some(d) => {
            if d.exists() && d.read_dir()?.next().is_some() {
                return Err(
                    format!("{} is not empty; give an empty or new folder", d.display()).into(),
                );
            }
            std::fs::create_dir_all(&d)?;
            d
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_owned()
        }
    };
    let day = NaiveDate::from_ymd_opt(2026, 11, 2).ok_or("bad date")?;
    let at = |h: u32, m: u32| {
        local_offset()
            .from_local_datetime(&day.and_hms_opt(h, m, 0).unwrap_or_default())
            .single()
            .map(|t| t.to_utc())
            .unwrap_or_default()
    };
    let clock = SimClock::new(at(8, 0));
    let relay = RelayProcess::start(&dir.join("relay"))?;
    let devices = dir.join("devices");
    std::fs::create_dir_all(&devices)?;
    let worker_a = relay.enroll(&devices, WORKER_A, &clock)?;
    let worker_b = relay.enroll(&devices, WORKER_B, &clock)?;
    let dispatcher = relay.enroll(&devices, DISPATCHER, &clock)?;
    let water = relay.enroll(&devices, WATER, &clock)?;
    let urban = relay.enroll(&devices, URBAN, &clock)?;
    let dir_data = dispatcher.directory()?;
    let name = |id: &str| -> String {
        id.parse()
            .ok()
            .and_then(|u| dir_data.user(&u).map(|u| u.name.clone()))
            .unwrap_or_else(|| id.to_owned())
    };

    println!(
        "{}",
        out.t(
            "== gridsync 演示：青溪区临江街道望湖社区的一天 ==",
            "== gridsync demo: a day in Wanghu community, Linjiang street, Qingxi district =="
        )
    );
    println!(
        "{}: {}{}",
        out.t("数据目录", "data folder"),
        dir.display(),
        if kept {
            ""
        } else {
            out.t("（临时，结束后删除）", " (temporary, removed at the end)")
        }
    );

    // Morning: both workers patrol with no signal and report what they find.
    let mut leak = None;
    let mut fire_exit = None;
    let mut noise = None;
    patrol(
        &worker_a,
        &clock,
        130,
        (30.2741, 120.1551),
        |minute, patrol_id| {
            match minute {
                20 => {
                    let id = worker_a.report_case(new_case(
                        "楼上管道漏水",
                        "3号楼2单元楼上管道破裂漏水，已渗到楼下天花板。",
                        "livelihood",
                        "livelihood.water_leak",
                        Severity::High,
                        (30.2745, 120.1553),
                    )?)?;
                    worker_a.link_case_to_patrol(patrol_id, &id)?;
                    leak = Some(id);
                }
                45 => {
                    let id = worker_a.report_case(new_case(
                        "消防通道被杂物堵塞",
                        "5号楼东侧消防通道堆放旧家具和电动车。",
                        "safety",
                        "safety.fire_exit",
                        Severity::Urgent,
                        (30.2749, 120.1558),
                    )?)?;
                    worker_a.link_case_to_patrol(patrol_id, &id)?;
                    fire_exit = Some(id);
                }
                70 => {
                    let mut input = new_case(
                        "邻里噪音纠纷",
                        "7号楼住户反映楼上深夜噪音扰民，双方多次争吵。",
                        "dispute",
                        "dispute.neighbor",
                        Severity::Normal,
                        (30.2752, 120.1549),
                    )?;
                    input.people.push(Person {
                        name: "住户甲".into(),
                        role: "投诉人".into(),
                        phone: String::new(),
                    });
                    let id = worker_a.report_case(input)?;
                    worker_a.link_case_to_patrol(patrol_id, &id)?;
                    worker_a.check_in(patrol_id, "7号楼", 30.2752, 120.1549)?;
                    // Small matters stay in the grid: mediated on the spot.
                    worker_a.act(
                        &id,
                        Action::SelfHandle {
                            result: "现场调解，双方约定晚十点后保持安静".into(),
                        },
                    )?;
                    noise = Some(id);
                }
                _ => {}
            }
            Ok(())
        },
    )?;
    clock.set(at(8, 20));
    let mut garbage = None;
    patrol(
        &worker_b,
        &clock,
        125,
        (30.2801, 120.1602),
        |minute, patrol_id| {
            if minute == 30 {
                let id = worker_b.report_case(new_case(
                    "小区门口垃圾堆放",
                    "北门外建筑垃圾堆放两天未清运。",
                    "city",
                    "city.garbage",
                    Severity::Normal,
                    (30.2803, 120.1604),
                )?)?;
                worker_b.link_case_to_patrol(patrol_id, &id)?;
                garbage = Some(id);
            }
            Ok(())
        },
    )?;
    let (leak, fire_exit, noise, garbage) = (
        leak.ok_or("no leak case")?,
        fire_exit.ok_or("no fire-exit case")?,
        noise.ok_or("no noise case")?,
        garbage.ok_or("no garbage case")?,
    );

    // 10:40: signal returns; the dispatcher receives the morning's reports.
    clock.set(at(10, 40));
    let moved = sync(&worker_a)?.pushed + sync(&worker_b)?.pushed;
    sync(&dispatcher)?;
    println!(
        "\n{} {moved} {}",
        out.t(
            "10:40 网格员恢复网络，同步变更",
            "10:40 workers back online; changes synced:"
        ),
        out.t("条", "")
    );
    for id in [&leak, &fire_exit, &garbage] {
        dispatcher.act(id, Action::Accept)?;
    }
    dispatcher.dispatch(&leak, "water".parse()?, None)?;
    dispatcher.dispatch(&fire_exit, "urban".parse()?, None)?;
    // Meanwhile, offline, worker B clears the garbage herself: a conflict with the
    // dispatch below, resolved the same way on every device.
    worker_b.act(
        &garbage,
        Action::SelfHandle {
            result: "联系物业当场清运".into(),
        },
    )?;
    dispatcher.dispatch(&garbage, "urban".parse()?, None)?;
    for d in [&dispatcher, &water, &urban] {
        sync(d)?;
    }

    // Afternoon: departments handle, workers verify.
    clock.set(at(13, 30));
    water.act(
        &leak,
        Action::Feedback {
            result: "已更换破裂水管，恢复供水".into(),
        },
    )?;
    urban.act(
        &fire_exit,
        Action::Feedback {
            result: "已清理消防通道杂物".into(),
        },
    )?;
    for d in [&water, &urban, &worker_b, &dispatcher, &worker_a, &worker_b] {
        sync(d)?;
    }
    clock.set(at(15, 0));
    worker_a.act(
        &leak,
        Action::Verify {
            passed: true,
            comment: "楼下已不再渗水".into(),
        },
    )?;
    worker_a.act(
        &fire_exit,
        Action::Verify {
            passed: false,
            comment: "电动车仍停在通道内".into(),
        },
    )?;
    for d in [&worker_a, &dispatcher, &urban] {
        sync(d)?;
    }
    clock.set(at(16, 10));
    urban.act(
        &fire_exit,
        Action::Feedback {
            result: "电动车已移至充电棚".into(),
        },
    )?;
    for d in [&urban, &dispatcher, &worker_a] {
        sync(d)?;
    }
    clock.set(at(16, 40));
    worker_a.act(
        &fire_exit,
        Action::Verify {
            passed: true,
            comment: "通道畅通".into(),
        },
    )?;
    sync(&worker_a)?;
    sync(&dispatcher)?;

    // Evening: archive and return visits.
    clock.set(at(17, 30));
    for (id, score) in [(&leak, 5), (&fire_exit, 4), (&noise, 5)] {
        dispatcher.act(id, Action::Archive)?;
        dispatcher.act(
            id,
            Action::Evaluate {
                satisfaction: score,
                comment: "电话回访".into(),
            },
        )?;
    }
    for d in [
        &dispatcher,
        &worker_a,
        &worker_b,
        &water,
        &urban,
        &dispatcher,
    ] {
        sync(d)?;
    }

    // Second patrols of the day.
    clock.set(at(18, 0));
    patrol(&worker_a, &clock, 125, (30.2741, 120.1551), |_, _| Ok(()))?;
    clock.set(at(18, 10));
    patrol(&worker_b, &clock, 95, (30.2801, 120.1602), |_, _| Ok(()))?;
    for d in [&worker_a, &worker_b, &dispatcher] {
        sync(d)?;
    }

    println!("\n{}", out.t("== 案件时间线 ==", "== Case timelines =="));
    for id in [&leak, &fire_exit, &noise, &garbage] {
        print_case(&out, &dispatcher.get_case(id)?, &dir_data, &name);
    }
    print_figures(&out, &dispatcher, &[WORKER_A, WORKER_B], day, &name)?;
    for (who, e) in [(WORKER_A, &worker_a), (DISPATCHER, &dispatcher)] {
        println!(
            "{} {}: {} {}, {} {}",
            out.t("设备", "device"),
            name(who),
            out.t("待上传变更", "changes waiting to upload:"),
            e.outbox_pending(usize::MAX)?.len(),
            out.t("被服务器拒绝", "refused by the server:"),
            e.rejected_changes()?.len()
        );
    }
    if keep {
        // A fresh password each run: the kept server is a real one.
        let password = DeviceId::random().to_string()[..12].to_owned();
        relay.set_console_password(DISPATCHER, &password)?;
        println!(
            "\n{} {}\n{} {}/console\n{} {} / {} {} ({})\n{} {}\n{}",
            out.t("中继服务器仍在运行：", "The relay is still running at"),
            relay.url,
            out.t("指挥中心网页：", "Command-centre console:"),
            relay.url,
            out.t("调度员登录：用户名", "Dispatcher sign-in: user"),
            DISPATCHER,
            out.t("密码", "password"),
            password,
            name(DISPATCHER),
            out.t("数据目录：", "data folder:"),
            dir.display(),
            out.t("按 Ctrl-C 停止。", "Press Ctrl-C to stop it."),
        );
        relay.wait()?;
    }
    Ok(())
}

fn print_case(out: &Out, case: &Case, dir: &Directory, name: &dyn Fn(&str) -> String) {
    let status = match out.lang {
        Lang::Zh => case.state.status.label_zh(),
        Lang::En => case.state.status.as_str(),
    };
    println!("\n【{}】{} — {}", case.doc.title, case.doc.id, status);
    for (entry, outcome) in case.timeline() {
        let time = entry.at.with_timezone(&local_offset()).format("%H:%M");
        let action = match out.lang {
            Lang::Zh => entry.action.label_zh(),
            Lang::En => entry.action.name(),
        };
        let detail = match &entry.action {
            Action::Dispatch { dept, deadline } => format!(
                " → {}, {} {}",
                match out.lang {
                    Lang::Zh => dir
                        .department(dept)
                        .map_or(dept.as_str(), |d| d.name.as_str()),
                    Lang::En => dept.as_str(),
                },
                out.t("时限", "due"),
                deadline
                    .with_timezone(&local_offset())
                    .format("%m-%d %H:%M")
            ),
            Action::Evaluate { satisfaction, .. } => format!(" {satisfaction}/5"),
            Action::SelfHandle { result } | Action::Feedback { result } => format!(" — {result}"),
            Action::Verify { comment, .. } => format!(" — {comment}"),
            _ => String::new(),
        };
        let mark = match outcome {
            Outcome::Applied => String::new(),
            Outcome::Conflict { reason, .. } => match out.lang {
                Lang::Zh => "  ⚠ 冲突，未生效（与另一台设备离线时的操作冲突）".to_owned(),
                Lang::En => format!("  ⚠ conflict, not applied: {reason}"),
            },
            Outcome::Refused(reason) => format!("  ✗ {reason}"),
        };
        let role = match out.lang {
            Lang::Zh => entry.role.label_zh(),
            Lang::En => entry.role.as_str(),
        };
        println!(
            "  {time}  {}（{role}）{action}{detail}{mark}",
            name(entry.actor.as_str())
        );
    }
}

fn print_figures(
    out: &Out,
    e: &Engine,
    workers: &[&str],
    day: NaiveDate,
    name: &dyn Fn(&str) -> String,
) -> DemoResult {
    let counts = e.count_cases(&CaseFilter::default())?;
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let closed: u64 = counts
        .iter()
        .filter(|(s, _)| matches!(s, Status::Archived | Status::Evaluated))
        .map(|(_, n)| n)
        .sum();
    let all = e.list_cases(&CaseFilter::default())?;
    let mut self_handled = 0;
    let mut scores = Vec::new();
    for c in &all {
        let case = e.get_case(&c.id)?;
        self_handled += u32::from(case.state.self_handled);
        scores.extend(case.state.satisfaction.map(f64::from));
    }
    println!("\n{}", out.t("== 今日指标 ==", "== Today's figures =="));
    for (s, n) in &counts {
        let label = match out.lang {
            Lang::Zh => s.label_zh(),
            Lang::En => s.as_str(),
        };
        println!("  {label}: {n}");
    }
    let pct = |a: f64, b: f64| if b > 0.0 { 100.0 * a / b } else { 0.0 };
    println!(
        "  {}: {:.0}%   {}: {:.0}%   {}: {:.1}/5",
        out.t("办结率", "closure rate"),
        pct(closed as f64, total as f64),
        out.t("自办率", "self-handled share"),
        pct(f64::from(self_handled), total as f64),
        out.t("回访满意度", "satisfaction"),
        scores.iter().sum::<f64>() / scores.len().max(1) as f64,
    );
    let ids = workers
        .iter()
        .map(|w| w.parse())
        .collect::<Result<Vec<_>, _>>()?;
    for row in e.patrol_compliance(&ids, day, day)? {
        println!(
            "  {} {}: {} {}, {} {}, {}",
            name(row.worker.as_str()),
            row.day,
            row.patrols,
            out.t("次巡查", "patrols"),
            row.minutes,
            out.t("分钟", "minutes"),
            if row.compliant {
                out.t("达标（一日双巡）", "compliant (two patrols of 2 h)")
            } else {
                out.t("未达标", "not compliant")
            }
        );
    }
    Ok(())
}
