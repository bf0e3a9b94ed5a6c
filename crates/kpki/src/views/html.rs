//! `kpki verify -o html`: the audit as one self-contained page (inline CSS and SVG, no script, no
//! network request) for audit records: the hierarchy with life bars and findings inline (the same
//! [`Picture`] `kpki tree` draws), the findings table, and a validity timeline.
//!
//! Every spec entry's element carries `data-entry`, every finding's table row `data-code`,
//! `data-entry`, `data-severity` and `data-path`, so tools (and the tests) can check the page.

use time::OffsetDateTime;

use crate::assess::Finding;
use crate::views::picture::{severity_mark, Health, Item, Kind, Picture};
use crate::views::verify::Report;

/// Escapes text for HTML element content and double-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn day(t: OffsetDateTime) -> String {
    rfc3339(t).chars().take(10).collect()
}

fn health_class(h: Health) -> &'static str {
    match h {
        Health::Ok => "h-ok",
        Health::Warning => "h-warning",
        Health::Error => "h-error",
    }
}

const CSS: &str = r#"
:root { --ok:#1a7f37; --warn:#9a6700; --err:#cf222e; --info:#0969da; --mute:#656d76; --line:#d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 24px 32px; color: #1f2328; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.meta { color: var(--mute); margin: 0; } .meta code { color: #1f2328; }
.counts span { display: inline-block; margin-right: 14px; font-weight: 600; }
.c-error { color: var(--err); } .c-warning { color: var(--warn); } .c-info { color: var(--info); }
ul.tree, ul.tree ul { list-style: none; margin: 0; padding-left: 22px; }
ul.tree { padding-left: 0; }
ul.tree ul { border-left: 1px solid var(--line); margin-left: 8px; }
.row { display: grid; grid-template-columns: calc(270px - var(--d, 0) * 31px) 150px 110px 100px 1fr; align-items: center; gap: 10px; padding: 2px 0; }
.name { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-weight: 600; overflow-wrap: anywhere; }
.kind { color: var(--mute); font-size: 12px; margin-left: 6px; font-weight: 400; }
.bar { display: inline-block; width: 150px; height: 10px; background: #eaeef2; border-radius: 3px; overflow: hidden; }
.fill { display: block; height: 100%; }
.h-ok .fill { background: var(--ok); } .h-warning .fill { background: #d4a72c; } .h-error .fill { background: var(--err); }
.h-ok > .row .left { color: var(--ok); } .h-warning > .row .left { color: var(--warn); } .h-error > .row .left, .problem { color: var(--err); }
.path { color: var(--mute); font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; overflow-wrap: anywhere; }
ul.inline { list-style: none; padding-left: 18px; margin: 0 0 4px; border: 0; font-size: 13px; }
ul.inline .sev-error, tr.sev-error td:first-child { color: var(--err); } ul.inline .sev-warning, tr.sev-warning td:first-child { color: var(--warn); } ul.inline .sev-info, tr.sev-info td:first-child { color: var(--info); }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; vertical-align: top; padding: 4px 8px; border-bottom: 1px solid var(--line); }
th { background: #f6f8fa; } td code { font-size: 12px; }
tr.sev-error td:first-child { border-left: 4px solid var(--err); } tr.sev-warning td:first-child { border-left: 4px solid #d4a72c; } tr.sev-info td:first-child { border-left: 4px solid var(--info); }
svg { font: 12px system-ui, "DejaVu Sans", sans-serif; }
svg .tl-ok { fill: var(--ok); } svg .tl-warning { fill: #d4a72c; } svg .tl-error { fill: var(--err); }
svg .grid { stroke: var(--line); } svg .now { stroke: var(--err); stroke-dasharray: 4 3; stroke-width: 1.5; }
footer { margin-top: 28px; color: var(--mute); font-size: 12px; }
"#;

fn finding_li(f: &Finding) -> String {
    format!(
        "<li class=\"sev-{}\" data-finding=\"{}\">{} {} <code>{}</code>: {}</li>",
        f.severity.as_str(),
        escape(f.code.as_str()),
        severity_mark(f.severity),
        f.severity.as_str(),
        escape(f.code.as_str()),
        escape(&f.message)
    )
}

fn item_html(p: &Picture, it: &Item, depth: usize, out: &mut String) {
    let h = it.health(p.now, p.warn_within);
    let node = matches!(it.kind, Kind::NodeKubeconfig | Kind::NodeServing);
    let id = if node {
        String::new()
    } else {
        format!(" id=\"entry-{}\"", escape(&it.entry))
    };
    out.push_str(&format!(
        "<li class=\"item {}\"{id} data-entry=\"{}\" data-kind=\"{}\">",
        health_class(h),
        escape(&it.entry),
        escape(it.kind.as_str()),
    ));
    out.push_str(&format!(
        "<div class=\"row\" style=\"--d:{depth}\"><span class=\"name\">{}<span class=\"kind\">{}</span></span>",
        escape(&it.entry),
        escape(it.kind.as_str())
    ));
    match (&it.life, &it.problem) {
        (_, Some(m)) => out.push_str(&format!(
            "<span class=\"problem\" style=\"grid-column: span 3\">{}</span>",
            escape(m)
        )),
        (Some(l), None) => {
            let pct = l.fraction_left(p.now) * 100.0;
            out.push_str(&format!(
                "<span class=\"bar\" title=\"{:.0}% of its life left\"><span class=\"fill\" style=\"width:{pct:.1}%\"></span></span><span class=\"left\">{}</span><span class=\"date\" title=\"notAfter {}\">{}</span>",
                pct,
                escape(&l.remaining_text(p.now)),
                escape(&rfc3339(l.not_after)),
                escape(&day(l.not_after)),
            ));
        }
        (None, None) => out.push_str(
            "<span class=\"left\" style=\"grid-column: span 3\">key pair, no expiry</span>",
        ),
    }
    out.push_str(&format!(
        "<span class=\"path\">{}</span></div>",
        escape(&it.path.display().to_string())
    ));
    if !it.findings.is_empty() {
        out.push_str("<ul class=\"inline\">");
        for f in &it.findings {
            out.push_str(&finding_li(f));
        }
        out.push_str("</ul>");
    }
    let has_nodes = it.nodes.as_ref().is_some_and(|g| g.total > 0);
    if !it.children.is_empty() || has_nodes {
        out.push_str("<ul>");
        for c in &it.children {
            item_html(p, c, depth + 1, out);
        }
        if let Some(g) = it.nodes.as_ref().filter(|g| g.total > 0) {
            let ok = g.total - g.expired - g.expiring - g.unreadable;
            out.push_str(&format!(
                "<li class=\"item nodes\" data-nodes=\"{}\"><div class=\"row\" style=\"--d:{}\"><span class=\"name\">node credentials ×{}</span><span style=\"grid-column: span 4\">{ok} ok, {} expiring, {} expired, {} missing or unreadable</span></div><ul>",
                g.total,
                depth + 1,
                g.total,
                g.expiring,
                g.expired,
                g.unreadable
            ));
            if g.counted() {
                if let Some(s) = g.soonest() {
                    item_html(p, s, depth + 2, out);
                }
            } else {
                for n in &g.items {
                    item_html(p, n, depth + 2, out);
                }
            }
            out.push_str("</ul></li>");
        }
        out.push_str("</ul>");
    }
    out.push_str("</li>\n");
}

/// The validity timeline: one bar per certificate from notBefore to notAfter on a shared time
/// axis, with year ticks and a line at the report's instant.
fn timeline(p: &Picture) -> String {
    // Many node credentials would make the timeline unreadable: a counted group shows its
    // soonest-expiring credential only, as the hierarchy does.
    fn rows<'a>(it: &'a Item, out: &mut Vec<&'a Item>) {
        if it.life.is_some() {
            out.push(it);
        }
        for c in &it.children {
            rows(c, out);
        }
        if let Some(g) = &it.nodes {
            if g.counted() {
                out.extend(g.soonest());
            } else {
                out.extend(g.items.iter().filter(|n| n.life.is_some()));
            }
        }
    }
    let mut kept: Vec<&Item> = Vec::new();
    for r in &p.roots {
        rows(r, &mut kept);
    }
    if kept.is_empty() {
        return "<p>No certificate could be read.</p>".into();
    }
    let lives: Vec<_> = kept.iter().filter_map(|i| i.life.as_ref()).collect();
    let lo = lives
        .iter()
        .map(|l| l.not_before)
        .min()
        .unwrap_or(p.now)
        .min(p.now);
    let hi = lives
        .iter()
        .map(|l| l.not_after)
        .max()
        .unwrap_or(p.now)
        .max(p.now);
    let span = (hi - lo).whole_seconds().max(1) as f64;
    let (label_w, plot_w, row_h, top) = (240.0, 760.0, 22.0, 28.0);
    let x = |t: OffsetDateTime| label_w + plot_w * ((t - lo).whole_seconds() as f64 / span);
    let plot_bottom = top + row_h * kept.len() as f64 + 4.0;
    // Room below the rows for the "now" label, clear of the year labels above.
    let height = plot_bottom + 18.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" viewBox=\"0 0 {w} {height}\" role=\"img\" aria-label=\"validity timeline\">",
        w = label_w + plot_w + 20.0
    );
    // Year ticks (every year, or every 5 when the span is long).
    let (y0, y1) = (lo.year(), hi.year());
    let step = if y1 - y0 > 15 { 5 } else { 1 };
    let mut y = y0 + 1;
    while y <= y1 {
        if y % step == 0 {
            if let Ok(d) = time::Date::from_calendar_date(y, time::Month::January, 1) {
                let t = d.midnight().assume_utc();
                let xx = x(t);
                s.push_str(&format!(
                    "<line class=\"grid\" x1=\"{xx:.1}\" y1=\"{}\" x2=\"{xx:.1}\" y2=\"{plot_bottom}\"/><text x=\"{xx:.1}\" y=\"14\" text-anchor=\"middle\" fill=\"#656d76\">{y}</text>",
                    top - 8.0
                ));
            }
        }
        y += 1;
    }
    for (i, it) in kept.iter().enumerate() {
        let Some(l) = &it.life else { continue };
        let yy = top + row_h * i as f64;
        let h = it.health(p.now, p.warn_within);
        let cls = match h {
            Health::Ok => "tl-ok",
            Health::Warning => "tl-warning",
            Health::Error => "tl-error",
        };
        let name = match it.kind {
            Kind::NodeKubeconfig => format!("{} (node)", it.entry),
            Kind::NodeServing => format!("{} (node serving)", it.entry),
            _ => it.entry.clone(),
        };
        let x0 = x(l.not_before);
        let w = (x(l.not_after) - x0).max(1.0);
        s.push_str(&format!(
            "<g class=\"tl-row\" data-entry=\"{}\"><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text><rect class=\"{cls}\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" rx=\"3\"><title>{}: {} → {}</title></rect></g>",
            escape(&it.entry),
            label_w - 10.0,
            yy + row_h * 0.68,
            escape(&name),
            yy + 4.0,
            row_h - 8.0,
            escape(&name),
            escape(&rfc3339(l.not_before)),
            escape(&rfc3339(l.not_after)),
        ));
    }
    let xn = x(p.now);
    s.push_str(&format!(
        "<line class=\"now\" x1=\"{xn:.1}\" y1=\"{}\" x2=\"{xn:.1}\" y2=\"{plot_bottom}\"/><text x=\"{xn:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#cf222e\">now</text>",
        top - 8.0,
        plot_bottom + 14.0
    ));
    s.push_str("</svg>");
    s
}

/// The whole page.
pub fn render(p: &Picture, report: &Report) -> String {
    let s = &report.summary;
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(&format!(
        "<title>kpki report: {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        escape(&report.cert_dir)
    ));
    out.push_str(&format!(
        "<header><h1>kpki PKI report</h1><p class=\"meta\">Certificates <code>{}</code>, kubeconfigs <code>{}</code>, checked at <code>{}</code> against the spec ({} entries).</p>\
<p class=\"counts\"><span class=\"c-error\">{} error(s)</span><span class=\"c-warning\">{} warning(s)</span><span class=\"c-info\">{} info</span></p></header>\n",
        escape(&report.cert_dir),
        escape(&report.kubeconfig_dir),
        escape(&report.time),
        s.entries,
        s.errors,
        s.warnings,
        s.info
    ));
    out.push_str("<section id=\"tree\"><h2>Hierarchy</h2>\n");
    if !p.notes.is_empty() {
        out.push_str("<ul class=\"inline\">");
        for f in &p.notes {
            out.push_str(&finding_li(f));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("<ul class=\"tree\">\n");
    for r in &p.roots {
        item_html(p, r, 0, &mut out);
    }
    out.push_str("</ul></section>\n");
    out.push_str("<section id=\"findings\"><h2>Findings</h2>\n");
    if report.findings.is_empty() {
        out.push_str("<p>No findings.</p>\n");
    } else {
        out.push_str("<table><thead><tr><th>severity</th><th>code</th><th>entry</th><th>file</th><th>problem</th><th>fix</th></tr></thead><tbody>\n");
        // Errors first, then warnings, then info; entry order within each.
        let mut findings: Vec<_> = report.findings.iter().collect();
        findings.sort_by_key(|f| f.severity);
        for f in findings {
            out.push_str(&format!(
                "<tr class=\"finding sev-{sev}\" data-severity=\"{sev}\" data-code=\"{code}\" data-entry=\"{entry}\" data-path=\"{path}\"><td>{sev}</td><td><code>{code}</code></td><td>{entry}</td><td><code>{path}</code></td><td>{msg}</td><td>{fix}</td></tr>\n",
                sev = f.severity.as_str(),
                code = escape(f.code.as_str()),
                entry = escape(&f.entry),
                path = escape(&f.path),
                msg = escape(&f.message),
                fix = escape(&f.fix),
            ));
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</section>\n<section id=\"timeline\"><h2>Validity timeline</h2>\n");
    out.push_str(&timeline(p));
    out.push_str("\n</section>\n");
    out.push_str(&format!(
        "<footer>kpki {} · codes are documented in docs/findings.md · this page loads nothing from the network</footer>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
