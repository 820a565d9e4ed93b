//! The resident pages, rendered on the server (maud escapes every value), in
//! Simplified Chinese, sized for a cheap phone on a weak link: one small inline
//! style and one small inline script, nothing loaded from anywhere.

use std::sync::OnceLock;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use gridsync_core::directory::Region;
use gridsync_core::index::local_offset;
use gridsync_core::{Directory, RegionCode, RegionLevel};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use sha2::{Digest, Sha256};

use super::ReportForm;
use crate::console::map::Projection;
use crate::relay::resident::{limits, PublicProgress, WORK_BITS};
use crate::relay::Receipt;

const STYLE: &str = r#"
body{font-family:"PingFang SC","Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:0;background:#f4f6f9;color:#1f2933;font-size:16px}
header{background:#0b4f8a;color:#fff;padding:.7em 1em}header h1{font-size:1.1em;margin:0}
main{padding:.8em 1em;max-width:640px}
label{display:block;margin:.8em 0 .3em;font-weight:bold}
input,select,textarea,button{font-size:1em;width:100%;box-sizing:border-box;padding:.5em;border:1px solid #bcccdc;border-radius:4px;background:#fff}
textarea{min-height:7em}button{background:#0b4f8a;color:#fff;border:0;margin-top:1em;padding:.7em}
button.minor{background:#fff;color:#0b4f8a;border:1px solid #0b4f8a}
.hint{color:#52606d;font-size:.85em;margin:.2em 0}.msg{padding:.7em;border-radius:4px;margin:.6em 0}
.ok{background:#e3f9e5}.err{background:#fde8e8}.code{font-size:1.6em;font-weight:bold;letter-spacing:.08em;text-align:center;background:#fff;padding:.5em;border:2px dashed #0b4f8a}
ol{padding-left:1.3em}li{margin:.4em 0}.t{color:#52606d;font-size:.85em}
.pick svg{background:#fff;border:1px solid #bcccdc;border-radius:4px;margin-top:.5em}.pick path{fill:#dbe9f6;stroke:#52606d;stroke-width:.8}
"#;

/// The page's one script: where the phone is (when the resident asks), and the
/// proof of work: find `nonce` so that SHA-256 of `challenge:nonce` starts with
/// the required zero bits. `crypto.subtle` is missing on plain HTTP and in old
/// WebViews, so SHA-256 is written out (that the relay accepts its nonces is
/// shown by `tests/console/test_resident.py`, which reports through it). It
/// starts on load, a slice at a time, so the page stays responsive.
const SCRIPT: &str = r#"(function(){var K=[],H0=[],p=2,n;for(;K.length<64;p++){for(n=2;n*n<=p&&p%n;n++);if(n*n>p){if(H0.length<8)H0.push(Math.pow(p,.5)%1*4294967296|0);K.push(Math.pow(p,1/3)%1*4294967296|0)}}
function sha(s){var H=H0.slice(),i,j,m=[],w=[],l=s.length*8,a,b,c,d,e,f,g,h,x,y,t;for(i=0;i<s.length;i++)m[i>>2]|=s.charCodeAt(i)<<24-i%4*8;m[l>>5]|=128<<24-l%32;m[(l+64>>9<<4)+15]=l;
for(i=0;i<m.length;i+=16){a=H[0];b=H[1];c=H[2];d=H[3];e=H[4];f=H[5];g=H[6];h=H[7];
for(j=0;j<64;j++){if(j<16)w[j]=m[i+j]|0;else{x=w[j-15];y=w[j-2];w[j]=((x>>>7|x<<25)^(x>>>18|x<<14)^x>>>3)+w[j-7]+((y>>>17|y<<15)^(y>>>19|y<<13)^y>>>10)+w[j-16]|0}
t=h+((e>>>6|e<<26)^(e>>>11|e<<21)^(e>>>25|e<<7))+(e&f^~e&g)+K[j]+w[j]|0;x=((a>>>2|a<<30)^(a>>>13|a<<19)^(a>>>22|a<<10))+(a&b^a&c^b&c)|0;h=g;g=f;f=e;e=d+t|0;d=c;c=b;b=a;a=t+x|0}
H[0]=H[0]+a|0;H[1]=H[1]+b|0;H[2]=H[2]+c|0;H[3]=H[3]+d|0;H[4]=H[4]+e|0;H[5]=H[5]+f|0;H[6]=H[6]+g|0;H[7]=H[7]+h|0}return H}
var F=document.getElementById('report');if(!F)return;var $=function(n){return F.elements[n]},st=document.getElementById('work'),bits=+F.getAttribute('data-bits'),done=false,want=false,k=0,c=$('challenge').value;
function ok(v){return bits>=32?v===0:(v>>>(32-bits))===0}
function run(){for(var end=k+2000;k<end;k++){if(ok(sha(c+':'+k)[0])){$('nonce').value=''+k;done=true;st.textContent='安全校验完成';if(want)F.submit();return}}setTimeout(run,0)}
setTimeout(run,0);F.onsubmit=function(){var i,f,max=+F.getAttribute('data-max');for(i=0;i<F.elements.length;i++){f=F.elements[i].files;if(f&&f[0]&&f[0].size>max){st.textContent='照片 '+f[0].name+' 超过 '+(max>>20)+' MB，请换一张或用相机直接拍摄';return false}}
if(done)return true;want=true;st.textContent='正在进行安全校验，完成后将自动提交…';return false};
var g=document.getElementById('locate');g.onclick=function(){var o=document.getElementById('where');if(!navigator.geolocation){o.textContent='此浏览器无法定位，请选择所在网格';return}o.textContent='正在定位…';
navigator.geolocation.getCurrentPosition(function(q){$('lat').value=q.coords.latitude.toFixed(6);$('lon').value=q.coords.longitude.toFixed(6);o.textContent='已定位（精度约 '+Math.round(q.coords.accuracy)+' 米）'},function(){o.textContent='无法获取位置，请选择所在网格'},{enableHighAccuracy:true,timeout:15000,maximumAge:60000})}
var mc=document.getElementById('mapc'),maps=document.querySelectorAll('div.pick'),i;if(!mc)return;mc.onchange=function(){for(i=0;i<maps.length;i++)maps[i].hidden=maps[i].getAttribute('data-community')!==mc.value};
function pick(ev){var t=ev.target,s=t.ownerSVGElement,P,k,m,o;if(!s||!t.getAttribute('data-grid'))return;P=s.createSVGPoint();P.x=ev.clientX;P.y=ev.clientY;P=P.matrixTransform(s.getScreenCTM().inverse());k=+s.getAttribute('data-k');
$('lat').value=(+s.getAttribute('data-n')-P.y/k).toFixed(6);$('lon').value=(+s.getAttribute('data-w')+P.x/(k*s.getAttribute('data-s'))).toFixed(6);m=$('grid');m.value=t.getAttribute('data-grid');
o=s.querySelector('circle');o.setAttribute('cx',P.x);o.setAttribute('cy',P.y);o.setAttribute('visibility','visible');document.getElementById('where').textContent='已在地图上选定位置：'+(m.selectedIndex>0?m.options[m.selectedIndex].text:'')}
for(i=0;i<maps.length;i++)maps[i].onclick=pick})();"#;

/// Width of a community's map of grids on the resident page, in SVG units (one
/// unit is a few metres of a community: coordinates are whole units).
const PICK_WIDTH: f64 = 320.0;

/// The most the maps of grids may add to the resident page, in bytes: beyond it
/// (a directory of many hundreds of grids) they are left out and the grid list
/// alone remains, so the page stays small on a weak link.
const PICK_BUDGET: usize = 40 * 1024;

/// A small map of each community's grids (WGS-84 boundaries from the directory),
/// one shown at a time: tapping a grid puts the report's position where the
/// finger was, inside that grid (the page's script). Nothing for a directory
/// without boundaries, or whose maps exceed [`PICK_BUDGET`]; the grid list
/// works without them.
fn pick_maps(dir: &Directory) -> Markup {
    let maps = pick_maps_markup(dir);
    if maps.0.len() > PICK_BUDGET {
        return html! {};
    }
    maps
}

fn pick_maps_markup(dir: &Directory) -> Markup {
    let maps: Vec<(&Region, Vec<&Region>, Projection)> = dir
        .regions()
        .iter()
        .filter(|r| r.level == RegionLevel::Community)
        .filter_map(|c| {
            let grids: Vec<&Region> = dir
                .regions()
                .iter()
                .filter(|g| g.level == RegionLevel::Grid && c.code.contains(&g.code))
                .filter(|g| g.boundary.is_some())
                .collect();
            let rings = grids.iter().filter_map(|g| g.boundary.as_deref());
            let projection = Projection::fit_width(rings, PICK_WIDTH)?;
            Some((c, grids, projection))
        })
        .collect();
    html! {
        @if !maps.is_empty() {
            label for="mapc" { "或在地图上点选位置" }
            select #mapc {
                option value="" { "选择社区，显示网格地图" }
                @for (c, _, _) in &maps { option value=(c.code.as_str()) { (c.name) } }
            }
            @for (c, grids, pr) in &maps {
                div.pick hidden data-community=(c.code.as_str()) {
                    svg width="100%" viewBox=(format!("0 0 {:.0} {:.0}", pr.width(), pr.height()))
                        data-w=(pr.west) data-n=(pr.north) data-k=(format!("{:.3}", pr.scale))
                        data-s=(format!("{:.6}", pr.shrink)) {
                        @for g in grids {
                            @if let Some(ring) = &g.boundary {
                                path d=(pr.ring(ring, 0)) data-grid=(g.code.as_str()) {}
                            }
                        }
                        circle r="5" fill="#c81e1e" visibility="hidden" {}
                    }
                    p.hint { "点击问题所在的网格，在其中选定位置。" }
                }
            }
        }
    }
}

/// The `script-src` source of [`SCRIPT`] for the Content-Security-Policy.
pub(crate) fn script_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        format!(
            "sha256-{}",
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(SCRIPT.as_bytes()))
        )
    })
}

fn local(t: DateTime<Utc>) -> String {
    t.with_timezone(&local_offset())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

pub(crate) fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header { h1 { (title) } }
                main { (body) }
            }
        }
    }
}

/// A page with one sentence and the way back.
pub(crate) fn message(title: &str, text: &str) -> Markup {
    layout(
        title,
        html! {
            p.msg.err { (text) }
            p { a href="/r" { "返回上报页面" } }
        },
    )
}

/// The category, description, place, photo and phone fields, shared by the
/// resident's page and the console's hotline form; filled with what was typed
/// before. `locate`: offer the phone's position (the page's script fills it).
pub(crate) fn report_fields(dir: &Directory, f: &ReportForm, locate: bool) -> Markup {
    let grids: Vec<(&str, Vec<(&RegionCode, &str)>)> = dir
        .regions()
        .iter()
        .filter(|r| r.level == RegionLevel::Community)
        .map(|c| {
            let mine = dir
                .regions()
                .iter()
                .filter(|g| g.level == RegionLevel::Grid && c.code.contains(&g.code))
                .map(|g| (&g.code, g.name.as_str()))
                .collect();
            (c.name.as_str(), mine)
        })
        .collect();
    html! {
        label for="category" { "问题类别" }
        select #category name="category" required {
            option value="" { "请选择" }
            @for c in dir.categories() {
                option value=(c.code) selected[f.category == c.code.as_str()] { (c.name) }
            }
        }
        label for="description" { "问题描述" }
        textarea #description name="description" required
            minlength=(limits::DESCRIPTION_MIN) maxlength=(limits::DESCRIPTION)
            placeholder="请写清楚发生了什么、在哪里、持续多久" { (f.description) }
        @if locate {
            label { "问题位置" }
            input type="hidden" name="lat" value=(f.lat);
            input type="hidden" name="lon" value=(f.lon);
            button.minor #locate type="button" { "获取我的位置" }
            p.hint #where {
                @if f.lat.is_empty() { "定位后自动确定所在网格；无法定位时请在下面选择。" }
                @else { "已定位" }
            }
            (pick_maps(dir))
        }
        label for="grid" { @if locate { "或" } "选择所在社区和网格" }
        select #grid name="grid" {
            option value="" { "请选择" }
            @for (community, mine) in &grids {
                optgroup label=(community) {
                    @for (code, name) in mine {
                        option value=(code) selected[f.grid == code.as_str()] { (name) }
                    }
                }
            }
        }
        label for="address" { "详细地址或地标（选填）" }
        input #address name="address" maxlength=(limits::ADDRESS) value=(f.address);
        label for="photo1" { "照片（选填，最多 " (limits::PHOTOS) " 张）" }
        @for i in 1..=limits::PHOTOS {
            input id=(format!("photo{i}")) type="file" name="photo" accept="image/*";
        }
        p.hint { "每张不超过 " (limits::PHOTO_BYTES / (1024 * 1024)) " MB；照片中的位置等信息会被清除。" }
        label for="phone" { "联系电话（选填）" }
        input #phone name="phone" type="tel" maxlength=(limits::PHONE) value=(f.phone);
        p.hint { "仅用于工作人员回访，不会公开。" }
    }
}

/// The resident's report page.
pub(crate) fn report(
    dir: &Directory,
    challenge: &str,
    f: &ReportForm,
    refused: Option<&str>,
) -> Markup {
    layout(
        "居民随手报",
        html! {
            @if let Some(m) = refused { p.msg.err role="alert" { (m) } }
            p.hint { "发现身边的问题？填写后将直接交给所在社区处理。紧急情况请拨打 110、119、120。" }
            form #report method="post" action="/r/report" enctype="multipart/form-data"
                data-bits=(WORK_BITS) data-max=(limits::PHOTO_BYTES) {
                input type="hidden" name="challenge" value=(challenge);
                input type="hidden" name="nonce" value="";
                (report_fields(dir, f, true))
                button type="submit" { "提交" }
                p.hint #work { "正在进行安全校验…" }
            }
            p { a href="/r/track" { "查询已提交问题的进度" } }
            script { (PreEscaped(SCRIPT)) }
        },
    )
}

/// The receipt: the tracking code, shown once.
pub(crate) fn receipt(r: &Receipt) -> Markup {
    layout(
        "提交成功",
        html! {
            @match &r.code {
                Some(code) => {
                    p.msg.ok { "已收到您的上报，将由所在社区受理。" }
                    p { "查询码（请截图或抄下，只显示这一次）：" }
                    p.code #code { (code) }
                    form method="post" action="/r/track" {
                        input type="hidden" name="code" value=(code);
                        button type="submit" { "查看处理进度" }
                    }
                }
                // A repeat of a recent report: its code is the first reporter's.
                None => p.msg.ok #duplicate { "这个问题已经有人提交过，社区正在处理，无需重复上报。感谢您的反映！" },
            }
            p { a href="/r" { "继续上报" } }
        },
    )
}

/// The form to enter a tracking code.
pub(crate) fn track_form(refused: Option<&str>) -> Markup {
    layout(
        "查询处理进度",
        html! {
            @if let Some(m) = refused { p.msg.err role="alert" { (m) } }
            form method="post" action="/r/track" {
                label for="code" { "查询码" }
                input #code name="code" required maxlength="20" autocomplete="off"
                    placeholder="例如 ABCD-EFGH-JKLM";
                button type="submit" { "查询" }
            }
            p { a href="/r" { "我要上报问题" } }
        },
    )
}

/// A case's public progress: steps and times, and the score form once closed.
pub(crate) fn progress(code: &str, p: &PublicProgress, flash: Option<&(bool, String)>) -> Markup {
    layout(
        "处理进度",
        html! {
            @if let Some((ok, m)) = flash {
                p.msg.ok[*ok].err[!*ok] role="status" { (m) }
            }
            p { "问题类别：" (p.category) }
            p { "当前状态：" strong #status { (p.status) } }
            ol #steps {
                @for s in &p.steps {
                    li { (s.label) br; span.t { (local(s.at)) } }
                }
            }
            @if let Some(score) = p.satisfaction {
                p { "您的满意度：" (score) " / 5" }
            }
            @if p.can_evaluate {
                form #evaluate method="post" action="/r/evaluate" {
                    input type="hidden" name="code" value=(code);
                    label for="satisfaction" { "问题已办结，请评价处理结果" }
                    select #satisfaction name="satisfaction" required {
                        option value="" { "请选择" }
                        option value="5" { "5 非常满意" }
                        option value="4" { "4 满意" }
                        option value="3" { "3 基本满意" }
                        option value="2" { "2 不满意" }
                        option value="1" { "1 非常不满意" }
                    }
                    label for="comment" { "意见（选填）" }
                    textarea #comment name="comment" maxlength=(limits::COMMENT) {}
                    button type="submit" { "提交评价" }
                }
            }
            form method="post" action="/r/track" {
                input type="hidden" name="code" value=(code);
                button.minor type="submit" { "刷新" }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample directory's maps fit the budget: one per community with grid
    /// boundaries, each grid a shape naming its code, with whole-unit coordinates.
    #[test]
    fn the_maps_of_grids_fit_the_page_budget() {
        let dir = Directory::from_json(crate::SAMPLE_DIRECTORY).unwrap();
        let maps = pick_maps(&dir).into_string();
        assert!(
            !maps.is_empty() && maps.len() <= PICK_BUDGET,
            "{}",
            maps.len()
        );
        let communities = dir
            .regions()
            .iter()
            .filter(|r| r.level == RegionLevel::Community)
            .count();
        assert_eq!(maps.matches("<div class=\"pick\"").count(), communities);
        assert_eq!(
            maps.matches("<path d=\"M").count(),
            dir.regions()
                .iter()
                .filter(|r| r.level == RegionLevel::Grid && r.boundary.is_some())
                .count()
        );
        assert!(maps.contains("data-grid=\"339901001001002\""));
        assert!(!maps.contains(".0,") && !maps.contains("http"));
    }
}
