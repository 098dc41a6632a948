//! A parcel drawn in SVG for the surveyors' pages: the subject with its boundary points (J1, J2 …)
//! labelled, its neighbours drawn lighter, findings highlighted and numbered, a scale bar in
//! metres and a north arrow. Server-rendered, self-contained: no external resource, no script.
//!
//! Written here rather than with an SVG crate: the drawing is a few paths and texts, and the two
//! things that matter — the map transform (north up, metres to view units) and escaping every
//! label that comes from an uploaded file — are clearer in a page of code than through a
//! document-model crate.

use std::fmt::Write as _;

use geo::{BooleanOps, BoundingRect, Coord, InteriorPoint, Line, LineString, MultiPolygon, Rect};

/// What to draw. Its `Debug` output leaves the labels out (they may name a right holder).
#[derive(Clone, PartialEq)]
pub struct Drawing {
    /// The accessible title (`<title>`), e.g. "宗地草图 320102001001GB00001".
    pub title: String,
    /// The parcel the page is about; the view is fitted to it.
    pub subject: Subject,
    /// Existing parcels around it, drawn lighter.
    pub neighbours: Vec<Neighbour>,
    /// Findings to highlight, each with its number in the page's list.
    pub highlights: Vec<Highlight>,
}

/// The parcel the drawing is about.
#[derive(Clone, PartialEq)]
pub struct Subject {
    /// Its label (e.g. the unit code or the surveyor's parcel name).
    pub label: String,
    /// Its geometry.
    pub geometry: MultiPolygon<f64>,
    /// Its boundary points (界址点) with their names.
    pub points: Vec<BoundaryPoint>,
}

/// A named boundary point.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundaryPoint {
    /// Its name as in the coordinate file (J1, J2 …).
    pub name: String,
    /// Where it is.
    pub at: Coord<f64>,
}

impl BoundaryPoint {
    /// The vertices of every ring of `geometry` named J1, J2 … in ring order (the closing
    /// repeat of a ring's first point skipped), for a geometry that came without names.
    pub fn numbered(geometry: &MultiPolygon<f64>) -> Vec<BoundaryPoint> {
        let mut out = Vec::new();
        for polygon in &geometry.0 {
            for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
                let pts = &ring.0;
                let open = match (pts.first(), pts.last()) {
                    (Some(a), Some(b)) if pts.len() > 1 && a == b => &pts[..pts.len() - 1],
                    _ => &pts[..],
                };
                for c in open {
                    out.push(BoundaryPoint {
                        name: format!("J{}", out.len() + 1),
                        at: *c,
                    });
                }
            }
        }
        out
    }
}

/// An existing parcel drawn beside the subject.
#[derive(Clone, PartialEq)]
pub struct Neighbour {
    /// Its label.
    pub label: String,
    /// Its geometry.
    pub geometry: MultiPolygon<f64>,
}

/// A finding drawn in the warning colour with its number.
#[derive(Clone, PartialEq)]
pub struct Highlight {
    /// The finding's number in the list on the page.
    pub number: u32,
    /// What to mark.
    pub shape: Shape,
    /// A short text of the finding (goes into the drawing's description).
    pub note: String,
}

/// The shape of a highlight.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// A point, e.g. where the largest gap is.
    Point(Coord<f64>),
    /// A segment, e.g. a boundary stretch standing off its neighbour.
    Segment(Line<f64>),
    /// A region, e.g. an overlap.
    Region(MultiPolygon<f64>),
}

// Labels, titles and notes may carry a right holder's name (labels come from uploaded files), so
// `Debug` shows only their length.
struct Redacted<'a>(&'a str);

impl std::fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} chars>", self.0.chars().count())
    }
}

impl std::fmt::Debug for Drawing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drawing")
            .field("title", &Redacted(&self.title))
            .field("subject", &self.subject)
            .field("neighbours", &self.neighbours)
            .field("highlights", &self.highlights)
            .finish()
    }
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("label", &Redacted(&self.label))
            .field("geometry", &self.geometry)
            .field("points", &self.points)
            .finish()
    }
}

impl std::fmt::Debug for Neighbour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neighbour")
            .field("label", &Redacted(&self.label))
            .field("geometry", &self.geometry)
            .finish()
    }
}

impl std::fmt::Debug for Highlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Highlight")
            .field("number", &self.number)
            .field("shape", &self.shape)
            .field("note", &Redacted(&self.note))
            .finish()
    }
}

const SUBJECT_FILL: &str = "#dbeafe";
const SUBJECT_STROKE: &str = "#1d4ed8";
const NEIGHBOUR_FILL: &str = "#f3f4f6";
const NEIGHBOUR_STROKE: &str = "#9ca3af";
const NEIGHBOUR_TEXT: &str = "#4b5563";
const WARNING: &str = "#c2410c";
const INK: &str = "#111827";

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab and newline are not allowed in XML 1.0.
            c if c.is_control() && c != '\t' && c != '\n' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The map transform: metres to view units, north up, origin at the view's top-left corner.
struct View {
    min_x: f64,
    max_y: f64,
    width: f64,
    height: f64,
    /// Font size in view units.
    font: f64,
}

impl View {
    fn fit(extent: Rect<f64>) -> View {
        let (w, h) = (extent.width(), extent.height());
        let margin = (0.15 * w.max(h)).max(5.0);
        let (width, height) = (w + 2.0 * margin, h + 2.0 * margin);
        View {
            min_x: extent.min().x - margin,
            max_y: extent.max().y + margin,
            width,
            height,
            font: width.max(height) / 45.0,
        }
    }

    fn x(&self, c: Coord<f64>) -> f64 {
        c.x - self.min_x
    }

    fn y(&self, c: Coord<f64>) -> f64 {
        self.max_y - c.y
    }

    fn path(&self, geometry: &MultiPolygon<f64>) -> String {
        let mut d = String::new();
        for polygon in &geometry.0 {
            for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
                self.ring(&mut d, ring);
            }
        }
        d
    }

    fn ring(&self, d: &mut String, ring: &LineString<f64>) {
        for (i, c) in ring.0.iter().enumerate() {
            let cmd = if i == 0 { 'M' } else { 'L' };
            let _ = write!(d, "{cmd}{:.3} {:.3} ", self.x(*c), self.y(*c));
        }
        if !ring.0.is_empty() {
            d.push_str("Z ");
        }
    }
}

/// A round length for the scale bar: 1, 2 or 5 × 10ⁿ metres, at most `max`.
fn scale_length(max: f64) -> f64 {
    if max.is_nan() || max <= 0.0 {
        return 1.0;
    }
    let base = 10f64.powf(max.log10().floor());
    [5.0, 2.0, 1.0]
        .into_iter()
        .map(|k| k * base)
        .find(|&len| len <= max)
        .unwrap_or(base)
}

fn extent_of(drawing: &Drawing) -> Rect<f64> {
    if let Some(r) = drawing.subject.geometry.bounding_rect()
        && r.min().x.is_finite()
        && r.max().y.is_finite()
    {
        return r;
    }
    let pts: Vec<Coord<f64>> = drawing.subject.points.iter().map(|p| p.at).collect();
    match LineString(pts).bounding_rect() {
        Some(r) if r.min().x.is_finite() && r.max().y.is_finite() => r,
        _ => Rect::new(Coord { x: 0.0, y: 0.0 }, Coord { x: 10.0, y: 10.0 }),
    }
}

fn label_point(geometry: &MultiPolygon<f64>) -> Option<Coord<f64>> {
    geometry.interior_point().map(|p| p.0)
}

/// Draws `drawing` as a self-contained `<svg>` element.
pub fn draw(drawing: &Drawing) -> String {
    let view = View::fit(extent_of(drawing));
    let f = view.font;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {:.3} {:.3}" role="img" font-family="sans-serif" font-size="{f:.3}">"#,
        view.width, view.height
    );
    let _ = write!(s, "<title>{}</title>", escape(&drawing.title));
    let mut desc = format!(
        "宗地 {}，界址点 {} 个，相邻宗地 {} 宗",
        drawing.subject.label,
        drawing.subject.points.len(),
        drawing.neighbours.len()
    );
    if !drawing.highlights.is_empty() {
        desc.push_str("；问题：");
        for (i, h) in drawing.highlights.iter().enumerate() {
            if i > 0 {
                desc.push('；');
            }
            let _ = write!(desc, "{}. {}", h.number, h.note);
        }
    }
    let _ = write!(s, "<desc>{}</desc>", escape(&desc));

    // Neighbours, lighter, below everything else.
    s.push_str(r#"<g class="neighbours">"#);
    for n in &drawing.neighbours {
        let _ = write!(
            s,
            r#"<path d="{}" fill="{NEIGHBOUR_FILL}" fill-rule="evenodd" stroke="{NEIGHBOUR_STROKE}" stroke-width="1" vector-effect="non-scaling-stroke"/>"#,
            view.path(&n.geometry)
        );
    }
    // A neighbour's label goes inside the part of it that is in view ...
    let in_view = Rect::new(
        Coord {
            x: view.min_x,
            y: view.max_y - view.height,
        },
        Coord {
            x: view.min_x + view.width,
            y: view.max_y,
        },
    )
    .to_polygon();
    let subject_ok = crate::check_finite(&drawing.subject.geometry).is_ok();
    for n in &drawing.neighbours {
        let place = if subject_ok && crate::check_finite(&n.geometry).is_ok() {
            // ... and outside the subject, where an overlap would hide it.
            let visible = n.geometry.intersection(&in_view);
            let free = visible.difference(&drawing.subject.geometry);
            label_point(&free).or_else(|| label_point(&visible))
        } else {
            label_point(&n.geometry)
        };
        if let Some(c) = place {
            let _ = write!(
                s,
                r#"<text x="{:.3}" y="{:.3}" fill="{NEIGHBOUR_TEXT}" text-anchor="middle">{}</text>"#,
                view.x(c),
                view.y(c),
                escape(&n.label)
            );
        }
    }
    s.push_str("</g>");

    // The subject.
    let subject = &drawing.subject;
    let _ = write!(
        s,
        r#"<g class="subject"><path d="{}" fill="{SUBJECT_FILL}" fill-opacity="0.8" fill-rule="evenodd" stroke="{SUBJECT_STROKE}" stroke-width="2" vector-effect="non-scaling-stroke"/>"#,
        view.path(&subject.geometry)
    );
    if let Some(c) = label_point(&subject.geometry) {
        let _ = write!(
            s,
            r#"<text x="{:.3}" y="{:.3}" fill="{SUBJECT_STROKE}" font-weight="bold" text-anchor="middle">{}</text>"#,
            view.x(c),
            view.y(c),
            escape(&subject.label)
        );
    }
    s.push_str("</g>");

    // Highlights in the warning colour, each with its number.
    s.push_str(r#"<g class="findings">"#);
    for h in &drawing.highlights {
        let anchor = match &h.shape {
            Shape::Point(c) => {
                let _ = write!(
                    s,
                    r#"<circle cx="{:.3}" cy="{:.3}" r="{:.3}" fill="none" stroke="{WARNING}" stroke-width="3" vector-effect="non-scaling-stroke"/>"#,
                    view.x(*c),
                    view.y(*c),
                    f * 0.6
                );
                Some(*c)
            }
            Shape::Segment(line) => {
                let _ = write!(
                    s,
                    r#"<line x1="{:.3}" y1="{:.3}" x2="{:.3}" y2="{:.3}" stroke="{WARNING}" stroke-width="4" stroke-linecap="round" vector-effect="non-scaling-stroke"/>"#,
                    view.x(line.start),
                    view.y(line.start),
                    view.x(line.end),
                    view.y(line.end)
                );
                Some(Coord {
                    x: (line.start.x + line.end.x) / 2.0,
                    y: (line.start.y + line.end.y) / 2.0,
                })
            }
            Shape::Region(region) => {
                let _ = write!(
                    s,
                    r#"<path d="{}" fill="{WARNING}" fill-opacity="0.35" fill-rule="evenodd" stroke="{WARNING}" stroke-width="2" vector-effect="non-scaling-stroke"/>"#,
                    view.path(region)
                );
                label_point(region)
            }
        };
        if let Some(c) = anchor {
            let (x, y) = (view.x(c) + f * 0.8, view.y(c) - f * 0.8);
            let _ = write!(
                s,
                r#"<circle cx="{x:.3}" cy="{y:.3}" r="{:.3}" fill="{WARNING}"/><text x="{x:.3}" y="{:.3}" fill="white" font-weight="bold" text-anchor="middle">{}</text>"#,
                f * 0.7,
                y + f * 0.35,
                h.number
            );
        }
    }
    s.push_str("</g>");

    // Boundary points over everything, so their names stay readable.
    s.push_str(r#"<g class="points">"#);
    for p in &subject.points {
        let (x, y) = (view.x(p.at), view.y(p.at));
        let _ = write!(
            s,
            r#"<circle cx="{x:.3}" cy="{y:.3}" r="{:.3}" fill="{INK}"/><text x="{:.3}" y="{:.3}" fill="{INK}" stroke="white" stroke-width="3" paint-order="stroke" vector-effect="non-scaling-stroke">{}</text>"#,
            f * 0.2,
            x + f * 0.3,
            y - f * 0.3,
            escape(&p.name)
        );
    }
    s.push_str("</g>");

    // Scale bar, bottom left.
    let len = scale_length(view.width / 4.0);
    let (x0, y0) = (f, view.height - f);
    let _ = write!(
        s,
        r#"<g class="scale" stroke="{INK}" stroke-width="2" vector-effect="non-scaling-stroke"><path d="M{x0:.3} {:.3} V{y0:.3} H{:.3} V{:.3}" fill="none" vector-effect="non-scaling-stroke"/><text x="{:.3}" y="{:.3}" stroke="none" fill="{INK}" text-anchor="middle">{} m</text></g>"#,
        y0 - f * 0.5,
        x0 + len,
        y0 - f * 0.5,
        x0 + len / 2.0,
        y0 - f * 0.7,
        len
    );

    // North arrow, top right.
    let (nx, ny) = (view.width - 1.5 * f, 1.2 * f);
    let _ = write!(
        s,
        r#"<g class="north"><path d="M{nx:.3} {ny:.3} L{:.3} {:.3} L{nx:.3} {:.3} L{:.3} {:.3} Z" fill="{INK}"/><text x="{nx:.3}" y="{:.3}" fill="{INK}" text-anchor="middle" font-weight="bold">N</text></g>"#,
        nx - f * 0.5,
        ny + f * 1.8,
        ny + f * 1.4,
        nx + f * 0.5,
        ny + f * 1.8,
        ny + f * 2.9
    );
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::polygon;

    fn square(x: f64, y: f64, side: f64) -> MultiPolygon<f64> {
        MultiPolygon(vec![polygon![
            (x: x, y: y),
            (x: x + side, y: y),
            (x: x + side, y: y + side),
            (x: x, y: y + side),
            (x: x, y: y),
        ]])
    }

    fn drawing(label: &str) -> Drawing {
        let geometry = square(500_000.0, 3_380_000.0, 20.0);
        Drawing {
            title: "宗地草图".into(),
            subject: Subject {
                label: label.into(),
                points: BoundaryPoint::numbered(&geometry),
                geometry,
            },
            neighbours: vec![Neighbour {
                label: "<b>邻</b>".into(),
                geometry: square(500_020.0, 3_380_000.0, 20.0),
            }],
            highlights: vec![Highlight {
                number: 1,
                shape: Shape::Point(Coord {
                    x: 500_020.0,
                    y: 3_380_010.0,
                }),
                note: "间隙 0.30 m & more".into(),
            }],
        }
    }

    #[test]
    fn labels_are_escaped() {
        let svg = draw(&drawing("<script>alert('x')</script>"));
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(!svg.contains("<b>"));
        assert!(svg.contains("&amp; more"));
    }

    #[test]
    fn points_are_labelled_and_north_is_up() {
        let svg = draw(&drawing("A"));
        for name in ["J1", "J2", "J3", "J4"] {
            assert!(svg.contains(&format!(">{name}</text>")), "{name} missing");
        }
        assert!(!svg.contains("J5"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains(r#"role="img""#) && svg.contains("<title>") && svg.contains("<desc>"));
        assert!(!svg.contains("href"), "no external resource");
        // Margin 5 m around 20 m: J1 (south-west) is at view (5, 25), J4 (north-west) at (5, 5).
        assert!(svg.contains(r#"cx="5.000" cy="25.000""#), "{svg}");
        assert!(svg.contains(r#"cx="5.000" cy="5.000""#), "{svg}");
    }

    #[test]
    fn debug_leaves_labels_out() {
        let shown = format!("{:?}", drawing("张三的宗地"));
        assert!(!shown.contains("张三"), "{shown}");
        assert!(!shown.contains("邻"), "{shown}");
        assert!(shown.contains("J1"));
    }

    #[test]
    fn scale_length_is_round() {
        assert_eq!(scale_length(7.5), 5.0);
        assert_eq!(scale_length(30.0), 20.0);
        assert_eq!(scale_length(100.0), 100.0);
        assert_eq!(scale_length(0.15), 0.1);
    }
}
