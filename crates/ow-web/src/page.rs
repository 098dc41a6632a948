//! What both zones' pages share: the style sheet and HTML escaping.
//!
//! Both zones serve [`STYLE_CSS`] at [`STYLE_CSS_PATH`] with [`style_css`]:
//!
//! ```
//! use axum::{Router, routing::get};
//! let app: Router = Router::new().route(ow_web::page::STYLE_CSS_PATH, get(ow_web::page::style_css));
//! ```
//!
//! The pages work without JavaScript. The style sheet is mobile-first (one column, large touch
//! targets) and widens at 48em; it uses the system's Chinese fonts and prints cleanly (navigation
//! and buttons hidden, black on white). Its class names:
//!
//! | class / element | use |
//! | --- | --- |
//! | `.site-header`, `.site-nav`, `.site-footer`, `main.container` | page frame |
//! | `.skip-link` | "跳到主要内容" link, visible on focus |
//! | `form .field`, `label`, `.hint`, `.field-error`, `.field.has-error` | form fields |
//! | `.error-summary` | list of a form's errors at its top (link each to its field) |
//! | `button`, `.button`, `.button.secondary`, `.button.danger`, `.actions` | buttons |
//! | `.notice.info` / `.success` / `.warning` / `.error` | message boxes |
//! | `.table-wrap > table` | tables that scroll sideways on phones |
//! | `dl.summary` | label/value pairs (application summary) |
//! | `ol.timeline > li.done` / `.current` / `.pending` / `.rejected` | case status timeline |
//! | `ol.steps > li.done` / `.current` | steps of a multi-page form |
//! | `.badge`, `.badge.ok` / `.warn` / `.bad` | status labels |
//! | `.pagination` | page links |
//! | `.visually-hidden`, `.no-print`, `.print-only` | helpers |
//!
//! Templates should escape with askama; [`escape_html`] is for the few strings built in code.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};

/// Where both zones serve [`STYLE_CSS`].
pub const STYLE_CSS_PATH: &str = "/static/style.css";

/// The shared style sheet.
pub const STYLE_CSS: &str = r#"/* OneWindow 互联网+不动产登记 — shared style sheet (ow-web). */
*, *::before, *::after { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body {
  margin: 0;
  font-family: -apple-system, BlinkMacSystemFont, "PingFang SC", "Hiragino Sans GB",
    "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
    "Helvetica Neue", Arial, sans-serif;
  font-size: 16px;
  line-height: 1.75;
  color: #1f2328;
  background: #f5f7fa;
  word-break: break-word;
  overflow-wrap: anywhere;
}
h1, h2, h3, h4 { line-height: 1.4; margin: 1.2em 0 .6em; font-weight: 600; }
h1 { font-size: 1.5rem; }
h2 { font-size: 1.25rem; }
h3 { font-size: 1.1rem; }
p, ul, ol, dl, table, form, fieldset { margin: 0 0 1em; }
a { color: #0b57a4; text-underline-offset: .2em; }
a:hover { color: #073e75; }
:focus-visible { outline: 3px solid #f0a500; outline-offset: 2px; }
img { max-width: 100%; height: auto; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Consolas, "Liberation Mono", monospace; }
.number { font-variant-numeric: tabular-nums; letter-spacing: .02em; }

/* Page frame */
.skip-link { position: absolute; left: -9999px; top: 0; background: #fff; padding: .5em 1em; z-index: 10; }
.skip-link:focus { left: 0; }
.site-header { background: #0f3d75; color: #fff; padding: .75rem 1rem; }
.site-header a { color: #fff; text-decoration: none; }
.site-header .site-title { font-size: 1.15rem; font-weight: 600; margin: 0; letter-spacing: .05em; }
.site-nav { background: #164f93; }
.site-nav ul { list-style: none; margin: 0; padding: 0 .5rem; display: flex; flex-wrap: wrap; }
.site-nav a { display: block; color: #fff; padding: .6rem .75rem; text-decoration: none; }
.site-nav a[aria-current="page"], .site-nav a:hover { background: rgba(255, 255, 255, .15); }
main.container, .container { max-width: 60rem; margin: 0 auto; padding: 1rem; }
.panel { background: #fff; border: 1px solid #d8dee4; border-radius: 6px; padding: 1rem; margin-bottom: 1rem; }
.site-footer { color: #57606a; font-size: .875rem; text-align: center; padding: 2rem 1rem; }
.breadcrumb { font-size: .875rem; color: #57606a; margin-bottom: .5rem; }

/* Forms */
fieldset { border: 1px solid #d8dee4; border-radius: 6px; padding: .75rem 1rem 0; background: #fff; }
legend { font-weight: 600; padding: 0 .25rem; }
.field { margin-bottom: 1.1rem; }
label { display: block; font-weight: 600; margin-bottom: .25rem; }
label .required, .required { color: #c8102e; margin-left: .15em; }
.hint { display: block; color: #57606a; font-size: .875rem; margin: -.1rem 0 .35rem; }
input[type="text"], input[type="password"], input[type="email"], input[type="tel"],
input[type="number"], input[type="date"], input[type="search"], input[type="file"],
input:not([type]), select, textarea {
  display: block; width: 100%; max-width: 32rem;
  font: inherit; font-size: 1rem; line-height: 1.5;
  padding: .55rem .65rem; min-height: 2.75rem;
  color: inherit; background: #fff;
  border: 1px solid #8c959f; border-radius: 4px;
}
textarea { max-width: 100%; min-height: 6rem; }
input.short { max-width: 12rem; }
input[readonly] { background: #f0f2f4; }
input[type="checkbox"], input[type="radio"] { width: 1.2rem; height: 1.2rem; margin: 0 .5rem 0 0; vertical-align: -.2rem; }
.choice { display: block; font-weight: normal; padding: .3rem 0; }
.field.has-error input, .field.has-error select, .field.has-error textarea { border: 2px solid #c8102e; }
.field.has-error { border-left: 4px solid #c8102e; padding-left: .75rem; }
.field-error { display: block; color: #c8102e; font-weight: 600; margin-bottom: .25rem; }
.error-summary { border: 3px solid #c8102e; background: #fff; padding: .75rem 1rem; margin-bottom: 1.25rem; }
.error-summary h2 { margin-top: 0; font-size: 1.1rem; color: #c8102e; }
.error-summary a { color: #c8102e; font-weight: 600; }

/* Buttons */
button, .button {
  display: inline-block; font: inherit; font-weight: 600; line-height: 1.4;
  min-height: 2.75rem; padding: .6rem 1.25rem; margin: 0 .5rem .5rem 0;
  color: #fff; background: #0b57a4; border: 1px solid #0b57a4; border-radius: 4px;
  text-decoration: none; cursor: pointer; text-align: center;
}
button:hover, .button:hover { background: #073e75; color: #fff; }
button.secondary, .button.secondary { color: #0b57a4; background: #fff; }
button.secondary:hover, .button.secondary:hover { background: #eef4fb; color: #073e75; }
button.danger, .button.danger { background: #c8102e; border-color: #c8102e; }
button[disabled], .button[aria-disabled="true"] { opacity: .55; cursor: not-allowed; }
.actions { margin-top: 1.5rem; }
.link-button { background: none; border: 0; color: #0b57a4; text-decoration: underline; padding: 0; min-height: 0; font-weight: normal; }
.link-button:hover { background: none; color: #073e75; }
/* On the dark header a link-styled button is white like the navigation (#fff on #0f3d75: 11:1). */
.site-header .link-button, .site-header .link-button:hover { color: #fff; }
.danger-link { color: #a0061f; }

/* Notices */
.notice { border-left: 5px solid #0b57a4; background: #eef4fb; padding: .75rem 1rem; margin-bottom: 1rem; }
.notice.success { border-color: #1a7f37; background: #e9f6ec; }
.notice.warning { border-color: #b76e00; background: #fff5e0; }
.notice.error { border-color: #c8102e; background: #fdecee; }
.notice > :last-child { margin-bottom: 0; }

/* Tables */
.table-wrap { overflow-x: auto; -webkit-overflow-scrolling: touch; margin-bottom: 1rem; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: .95rem; }
caption { text-align: left; font-weight: 600; padding: .5rem 0; }
th, td { border: 1px solid #d8dee4; padding: .5rem .65rem; text-align: left; vertical-align: top; }
thead th { background: #eef1f4; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafbfc; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }

/* Label/value summary */
dl.summary { display: grid; grid-template-columns: 1fr; gap: 0; background: #fff; border: 1px solid #d8dee4; border-radius: 6px; }
dl.summary dt { font-weight: 600; color: #57606a; padding: .5rem .75rem 0; }
dl.summary dd { margin: 0; padding: 0 .75rem .5rem; border-bottom: 1px solid #eef1f4; }

/* Summary list with actions per row (the "add another" pattern, check your answers) */
dl.summary-list { margin: 0 0 1rem; background: #fff; border: 1px solid #d8dee4; border-radius: 6px; }
dl.summary-list .summary-row { display: flex; flex-wrap: wrap; gap: .25rem 1rem; padding: .6rem .75rem; border-bottom: 1px solid #eef1f4; }
dl.summary-list .summary-row:last-child { border-bottom: 0; }
dl.summary-list dt { font-weight: 600; color: #57606a; flex: 0 0 100%; }
dl.summary-list dd { margin: 0; flex: 1 1 auto; }
dl.summary-list dd.summary-actions { flex: 0 0 auto; display: flex; gap: 1rem; align-items: flex-start; }
.party-side.has-error { border-left: 4px solid #c8102e; padding-left: .75rem; }
h2 .edit-link { font-size: 1rem; font-weight: normal; margin-left: .5rem; }
.id-full { letter-spacing: .06em; }

/* Confirmation after submitting */
.confirmation-panel { background: #116329; color: #fff; text-align: center; padding: 1.25rem 1rem; border-radius: 6px; margin-bottom: 1.5rem; }
.confirmation-panel h1 { margin-top: 0; }
.confirmation-panel p { margin: 0 0 .25rem; }
.confirmation-panel .application-no { font-size: 1.6rem; letter-spacing: .05em; font-variant-numeric: tabular-nums; word-break: break-all; }

/* Status badges */
.badge { display: inline-block; font-size: .8rem; font-weight: 600; line-height: 1.5; padding: .05rem .5rem; border-radius: 999px; background: #eef1f4; color: #1f2328; white-space: nowrap; }
.badge.ok { background: #dff3e4; color: #116329; }
.badge.warn { background: #fff1d6; color: #7a4700; }
.badge.bad { background: #fde2e5; color: #a0061f; }

/* Case status timeline */
ol.timeline { list-style: none; margin: 0 0 1rem; padding: 0 0 0 1.75rem; position: relative; }
ol.timeline::before { content: ""; position: absolute; left: .55rem; top: .4rem; bottom: .4rem; width: 2px; background: #d8dee4; }
ol.timeline > li { position: relative; padding: 0 0 1rem; }
ol.timeline > li::before {
  content: ""; position: absolute; left: -1.55rem; top: .45rem;
  width: .9rem; height: .9rem; border-radius: 50%; background: #fff; border: 2px solid #8c959f;
}
ol.timeline > li.done::before { background: #1a7f37; border-color: #1a7f37; }
ol.timeline > li.current::before { background: #0b57a4; border-color: #0b57a4; box-shadow: 0 0 0 4px #cfe2f7; }
ol.timeline > li.rejected::before { background: #c8102e; border-color: #c8102e; }
ol.timeline > li.pending { color: #57606a; }
ol.timeline .when { display: block; font-size: .85rem; color: #57606a; font-variant-numeric: tabular-nums; }
ol.timeline .what { font-weight: 600; }

/* Steps of a multi-page form */
ol.steps { list-style: none; display: flex; flex-wrap: wrap; gap: .25rem; padding: 0; margin: 0 0 1.25rem; counter-reset: step; font-size: .9rem; }
ol.steps > li { counter-increment: step; padding: .3rem .6rem; border-radius: 4px; background: #eef1f4; color: #57606a; }
ol.steps > li::before { content: counter(step) ". "; }
ol.steps > li.done { background: #dff3e4; color: #116329; }
ol.steps > li.current { background: #0b57a4; color: #fff; font-weight: 600; }
/* Step links take their step's colour, so the current step reads white on blue (6.9:1), not
   link blue on blue. */
ol.steps a { color: inherit; }

/* Pagination */
.pagination { display: flex; flex-wrap: wrap; gap: .25rem; list-style: none; padding: 0; }
.pagination a, .pagination span { display: inline-block; min-width: 2.5rem; padding: .4rem .6rem; text-align: center; border: 1px solid #d8dee4; border-radius: 4px; background: #fff; text-decoration: none; }
.pagination [aria-current="page"] { background: #0b57a4; color: #fff; border-color: #0b57a4; }

/* Helpers */
.visually-hidden { position: absolute !important; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.print-only { display: none; }
.muted { color: #57606a; }

/* Wider screens */
@media (min-width: 48em) {
  body { font-size: 17px; }
  h1 { font-size: 1.75rem; }
  main.container, .container { padding: 1.5rem 2rem; }
  .panel { padding: 1.25rem 1.5rem; }
  dl.summary { grid-template-columns: minmax(9rem, 1fr) 3fr; }
  dl.summary dt { padding: .5rem .75rem; border-bottom: 1px solid #eef1f4; }
  dl.summary dd { padding: .5rem .75rem; }
  dl.summary-list dt { flex: 0 0 9rem; }
}

/* Print: the page as a clean record */
@media print {
  @page { margin: 15mm; }
  body { background: #fff; color: #000; font-size: 11pt; line-height: 1.6; }
  .site-nav, .skip-link, .actions, button, .button, .pagination, .no-print, form input[type="file"] { display: none !important; }
  .print-only { display: block; }
  .site-header { background: none; color: #000; border-bottom: 2px solid #000; padding: 0 0 .5rem; }
  .site-header a { color: #000; }
  main.container, .container { max-width: none; padding: 0; }
  .panel, fieldset, dl.summary, table { border-color: #000; background: #fff; }
  a { color: #000; text-decoration: none; }
  .notice { border: 1px solid #000; background: #fff; }
  .badge { border: 1px solid #000; background: #fff; color: #000; }
  thead { display: table-header-group; }
  tr, li, dl.summary dt, dl.summary dd { break-inside: avoid; }
  h1, h2, h3 { break-after: avoid; }
  ol.timeline::before { background: #000; }
  ol.timeline > li::before { border-color: #000; box-shadow: none; }
  ol.timeline > li.done::before, ol.timeline > li.current::before, ol.timeline > li.rejected::before { background: #000; }
}
"#;

/// Serves [`STYLE_CSS`] as `text/css`, cacheable for an hour.
pub async fn style_css() -> impl axum::response::IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE_CSS,
    )
}

/// Escapes `&`, `<`, `>`, `"` and `'` for HTML text and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::{Body, to_bytes};
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt as _;

    #[test]
    fn escaping() {
        assert_eq!(
            escape_html(r#"<a href="x">'张三' & 李四</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;张三&#39; &amp; 李四&lt;/a&gt;"
        );
        assert_eq!(escape_html("不动产"), "不动产");
        assert_eq!(escape_html(""), "");
    }

    /// WCAG 2 contrast ratio of two `#rrggbb` colours.
    fn contrast(a: &str, b: &str) -> f64 {
        fn luminance(hex: &str) -> f64 {
            let channel = |i: usize| {
                let v = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")) / 255.0;
                if v <= 0.039_28 {
                    v / 12.92
                } else {
                    ((v + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
        }
        let (la, lb) = (luminance(a), luminance(b));
        (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
    }

    /// The colour a rule gives `property`, from the first rule whose selector is `selector`.
    fn rule_colour(selector: &str, property: &str) -> String {
        let start = STYLE_CSS
            .find(&format!("\n{selector} {{"))
            .unwrap_or_else(|| panic!("no rule {selector}"));
        let body = &STYLE_CSS[start..];
        let body = &body[..body.find('}').expect("rule end")];
        let at = body
            .find(&format!(" {property}: #"))
            .unwrap_or_else(|| panic!("{selector} has no {property}"));
        let value = &body[at + property.len() + 3..];
        let value = &value[..value.find(';').expect("declaration end")];
        if value.len() == 4 {
            // #rgb → #rrggbb
            value.chars().skip(1).fold("#".to_owned(), |mut out, c| {
                out.push(c);
                out.push(c);
                out
            })
        } else {
            value.to_owned()
        }
    }

    #[test]
    fn header_sign_out_and_current_step_meet_contrast_4_5() {
        // 退出登录 is a link-styled button on the dark header.
        let header = rule_colour(".site-header", "background");
        let sign_out = rule_colour(
            ".site-header .link-button, .site-header .link-button:hover",
            "color",
        );
        assert!(
            contrast(&sign_out, &header) >= 4.5,
            "{sign_out} on {header}"
        );
        // The current step's label is a link inside the blue step.
        let step_bg = rule_colour("ol.steps > li.current", "background");
        let step_fg = rule_colour("ol.steps > li.current", "color");
        assert!(STYLE_CSS.contains("ol.steps a { color: inherit; }"));
        assert!(
            contrast(&step_fg, &step_bg) >= 4.5,
            "{step_fg} on {step_bg}"
        );
        // The colours the old sheet gave them fail: this check can tell.
        assert!(contrast("#0b57a4", &header) < 4.5);
        assert!(contrast("#0b57a4", &step_bg) < 1.1);
    }

    #[test]
    fn style_sheet_is_balanced_and_covers_its_parts() {
        let open = STYLE_CSS.matches('{').count();
        let close = STYLE_CSS.matches('}').count();
        assert_eq!(open, close);
        for needle in [
            "@media print",
            "@media (min-width: 48em)",
            "ol.timeline",
            ".error-summary",
            ".table-wrap",
            "PingFang SC",
            "Microsoft YaHei",
            ":focus-visible",
        ] {
            assert!(STYLE_CSS.contains(needle), "{needle}");
        }
        // No remote resources (the CSP allows only 'self').
        assert!(!STYLE_CSS.contains("url("));
        assert!(!STYLE_CSS.contains("@import"));
    }

    #[tokio::test]
    async fn served_as_css() {
        let app: Router = Router::new().route(STYLE_CSS_PATH, get(style_css));
        let resp = app
            .oneshot(Request::get(STYLE_CSS_PATH).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()[CONTENT_TYPE], "text/css; charset=utf-8");
        let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        assert_eq!(body, STYLE_CSS.as_bytes());
    }
}
