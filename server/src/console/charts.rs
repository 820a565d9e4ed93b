//! Charts drawn on the server as SVG (no script, no network): horizontal bars,
//! one row per label, scaled to the largest value.

use maud::{html, Markup};

const WIDTH: u32 = 640;
const LABEL: u32 = 170;
const ROW: u32 = 24;
const VALUE: u32 = 60;

/// A horizontal bar chart of `bars` (label, value), titled for screen readers.
pub fn bars(title: &str, bars: &[(String, u64)]) -> Markup {
    let max = bars.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
    let span = WIDTH - LABEL - VALUE;
    let height = ROW * bars.len().max(1) as u32 + 8;
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" role="img" width=(WIDTH) height=(height)
            viewBox={ "0 0 " (WIDTH) " " (height) } {
            title { (title) }
            @for (i, (label, value)) in bars.iter().enumerate() {
                @let y = 4 + ROW * i as u32;
                @let w = (u64::from(span) * value / max) as u32;
                text x=(LABEL - 8) y=(y + 16) text-anchor="end" font-size="13" fill="#1f2933" { (label) }
                rect x=(LABEL) y=(y + 3) width=(w.max(1)) height=(ROW - 8) fill="#0b4f8a" rx="2" {}
                text x=(LABEL + w + 6) y=(y + 16) font-size="13" fill="#1f2933" { (value) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_escape_labels() {
        let svg = bars("类别", &[("城市管理".into(), 10), ("<script>".into(), 5)]).into_string();
        let span = WIDTH - LABEL - VALUE;
        assert!(svg.contains(&format!("width=\"{span}\"")), "{svg}");
        assert!(svg.contains(&format!("width=\"{}\"", span / 2)));
        assert!(svg.contains("&lt;script&gt;") && !svg.contains("<script>"));
        assert!(bars("空", &[]).into_string().contains("<svg"));
    }
}
