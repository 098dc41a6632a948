//! [`ParcelIndex`]: an R-tree over parcel envelopes plus the parcels' geometries, stored compactly.
//!
//! Layout (why it is written here rather than keeping `geo::MultiPolygon`s): a `MultiPolygon` of one
//! ring costs three heap blocks and ~200 bytes for 8 points; a million parcels should stay well
//! under 500 MB. A parcel is kept as one boxed slice of open rings (the closing point dropped) and a
//! second boxed slice describing the rings, which is empty — no allocation — for the common parcel
//! of one polygon without holes. The R-tree (rstar, bulk-loaded) holds only the envelope and a
//! slot number. Geometries are rebuilt on demand, which costs little next to the checks.

use std::collections::HashMap;

use geo::{Coord, LineString, MultiPolygon, Polygon, Rect};
use rstar::{AABB, RTree, RTreeObject};

use crate::ParcelId;

/// One R-tree entry: a parcel's envelope and its slot in [`ParcelIndex::slots`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Entry {
    env: AABB<[f64; 2]>,
    pub(crate) slot: u32,
}

impl RTreeObject for Entry {
    type Envelope = AABB<[f64; 2]>;
    fn envelope(&self) -> Self::Envelope {
        self.env
    }
}

/// A parcel's geometry in compact form.
#[derive(Debug, Clone)]
struct Stored {
    id: ParcelId,
    /// All rings' points, each ring open (its closing point not repeated).
    coords: Box<[Coord<f64>]>,
    /// Empty: one polygon whose exterior is all of `coords`. Otherwise: the number of polygons,
    /// then for each polygon its number of rings followed by each ring's point count (exterior
    /// first).
    parts: Box<[u32]>,
}

impl Stored {
    fn new(id: ParcelId, geometry: &MultiPolygon<f64>) -> Self {
        let simple = geometry.0.len() == 1 && geometry.0[0].interiors().is_empty();
        let mut coords = Vec::new();
        let mut parts = Vec::new();
        let mut push_ring = |ring: &LineString<f64>, parts: &mut Vec<u32>| {
            let pts = open_ring(ring);
            coords.extend_from_slice(pts);
            if !simple {
                parts.push(len_u32(pts.len()));
            }
        };
        if !simple {
            parts.push(len_u32(geometry.0.len()));
        }
        for polygon in &geometry.0 {
            if !simple {
                parts.push(len_u32(1 + polygon.interiors().len()));
            }
            push_ring(polygon.exterior(), &mut parts);
            for hole in polygon.interiors() {
                push_ring(hole, &mut parts);
            }
        }
        Stored {
            id,
            coords: coords.into_boxed_slice(),
            parts: parts.into_boxed_slice(),
        }
    }

    fn geometry(&self) -> MultiPolygon<f64> {
        fn ring(points: &[Coord<f64>]) -> LineString<f64> {
            let mut v = Vec::with_capacity(points.len() + 1);
            v.extend_from_slice(points);
            if let Some(first) = points.first() {
                v.push(*first);
            }
            LineString(v)
        }
        if self.parts.is_empty() {
            return MultiPolygon(vec![Polygon::new(ring(&self.coords), vec![])]);
        }
        let mut polygons = Vec::new();
        let mut at = 0usize; // position in coords
        let mut p = 1usize; // position in parts
        let n_polygons = self.parts[0] as usize;
        for _ in 0..n_polygons {
            let n_rings = self.parts.get(p).copied().unwrap_or(0) as usize;
            p += 1;
            let mut rings = Vec::with_capacity(n_rings);
            for _ in 0..n_rings {
                let len = self.parts.get(p).copied().unwrap_or(0) as usize;
                p += 1;
                let end = (at + len).min(self.coords.len());
                rings.push(ring(&self.coords[at..end]));
                at = end;
            }
            let mut rings = rings.into_iter();
            if let Some(exterior) = rings.next() {
                polygons.push(Polygon::new(exterior, rings.collect()));
            }
        }
        MultiPolygon(polygons)
    }

    /// The envelope of the points, or `None` when there is none or one is not finite.
    fn envelope(&self) -> Option<AABB<[f64; 2]>> {
        let first = self.coords.first()?;
        let (mut min, mut max) = ([first.x, first.y], [first.x, first.y]);
        for c in self.coords.iter() {
            if !(c.x.is_finite() && c.y.is_finite()) {
                return None;
            }
            min = [min[0].min(c.x), min[1].min(c.y)];
            max = [max[0].max(c.x), max[1].max(c.y)];
        }
        Some(AABB::from_corners(min, max))
    }
}

/// The ring's points without the closing repeat of the first.
fn open_ring(ring: &LineString<f64>) -> &[Coord<f64>] {
    let pts = ring.0.as_slice();
    match (pts.first(), pts.last()) {
        (Some(a), Some(b)) if pts.len() > 1 && a == b => &pts[..pts.len() - 1],
        _ => pts,
    }
}

fn len_u32(n: usize) -> u32 {
    // A parcel of more than four billion points or rings is not a parcel; saturate rather than
    // wrap so that a corrupt row cannot make the decoder read the wrong points silently.
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The parcels of the cadastral database in memory: an R-tree (rstar, bulk-loaded) over their
/// envelopes plus their geometries in compact form.
///
/// A parcel with no points, or with a coordinate that is not finite, is kept (so [`get`] returns
/// it) but not indexed: no query finds it.
///
/// [`get`]: ParcelIndex::get
#[derive(Debug, Clone)]
pub struct ParcelIndex {
    tree: RTree<Entry>,
    slots: Vec<Option<Stored>>,
    free: Vec<u32>,
    ids: HashMap<ParcelId, u32>,
}

impl Default for ParcelIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl ParcelIndex {
    /// An empty index.
    pub fn new() -> Self {
        ParcelIndex {
            tree: RTree::new(),
            slots: Vec::new(),
            free: Vec::new(),
            ids: HashMap::new(),
        }
    }

    /// Builds the index of many parcels at once (the start of the intranet server). When an id
    /// appears more than once, the last geometry wins.
    pub fn bulk_load(parcels: Vec<(ParcelId, MultiPolygon<f64>)>) -> Self {
        let mut slots: Vec<Option<Stored>> = Vec::with_capacity(parcels.len());
        let mut ids = HashMap::with_capacity(parcels.len());
        let mut free = Vec::new();
        for (id, geometry) in parcels {
            let slot = len_u32(slots.len());
            slots.push(Some(Stored::new(id, &geometry)));
            drop(geometry);
            if let Some(old) = ids.insert(id, slot) {
                slots[old as usize] = None;
                free.push(old);
            }
        }
        let entries: Vec<Entry> = slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let env = s.as_ref()?.envelope()?;
                Some(Entry {
                    env,
                    slot: len_u32(i),
                })
            })
            .collect();
        ParcelIndex {
            tree: RTree::bulk_load(entries),
            slots,
            free,
            ids,
        }
    }

    /// Adds a parcel, or replaces the geometry of the parcel with this id.
    pub fn insert(&mut self, id: ParcelId, geometry: MultiPolygon<f64>) {
        self.remove(id);
        let stored = Stored::new(id, &geometry);
        let env = stored.envelope();
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(stored);
                slot
            }
            None => {
                self.slots.push(Some(stored));
                len_u32(self.slots.len() - 1)
            }
        };
        self.ids.insert(id, slot);
        if let Some(env) = env {
            self.tree.insert(Entry { env, slot });
        }
    }

    /// Removes a parcel; `false` if the index did not hold it.
    pub fn remove(&mut self, id: ParcelId) -> bool {
        let Some(slot) = self.ids.remove(&id) else {
            return false;
        };
        if let Some(stored) = self.slots[slot as usize].take()
            && let Some(env) = stored.envelope()
        {
            self.tree.remove(&Entry { env, slot });
        }
        self.free.push(slot);
        true
    }

    /// The number of parcels held.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the index holds no parcel.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether the index holds this parcel.
    pub fn contains(&self, id: ParcelId) -> bool {
        self.ids.contains_key(&id)
    }

    /// The geometry of a parcel (rebuilt from the compact form, rings closed again).
    pub fn get(&self, id: ParcelId) -> Option<MultiPolygon<f64>> {
        let slot = *self.ids.get(&id)?;
        self.slots
            .get(slot as usize)?
            .as_ref()
            .map(Stored::geometry)
    }

    /// The parcels whose envelope meets `rect` (touching counts). This is the R-tree query alone,
    /// the reference the benchmark prints beside the checks.
    pub fn envelope_query(&self, rect: &Rect<f64>) -> Vec<ParcelId> {
        self.entries_in(rect)
            .filter_map(|e| self.id_of(e.slot))
            .collect()
    }

    pub(crate) fn entries_in(&self, rect: &Rect<f64>) -> impl Iterator<Item = &Entry> {
        let env = AABB::from_corners([rect.min().x, rect.min().y], [rect.max().x, rect.max().y]);
        self.tree.locate_in_envelope_intersecting(&env)
    }

    pub(crate) fn id_of(&self, slot: u32) -> Option<ParcelId> {
        Some(self.slots.get(slot as usize)?.as_ref()?.id)
    }

    pub(crate) fn geometry_of(&self, slot: u32) -> Option<MultiPolygon<f64>> {
        self.slots
            .get(slot as usize)?
            .as_ref()
            .map(Stored::geometry)
    }

    pub(crate) fn entry_rect(entry: &Entry) -> Rect<f64> {
        let (lo, hi) = (entry.env.lower(), entry.env.upper());
        Rect::new(Coord { x: lo[0], y: lo[1] }, Coord { x: hi[0], y: hi[1] })
    }
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

    fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> Rect<f64> {
        Rect::new(Coord { x: x0, y: y0 }, Coord { x: x1, y: y1 })
    }

    fn sorted(mut v: Vec<ParcelId>) -> Vec<ParcelId> {
        v.sort_unstable();
        v
    }

    #[test]
    fn compact_form_round_trips_holes_and_several_polygons() {
        let with_hole = Polygon::new(
            square(0.0, 0.0, 10.0).0[0].exterior().clone(),
            vec![square(2.0, 2.0, 3.0).0[0].exterior().clone()],
        );
        let multi = MultiPolygon(vec![with_hole, square(20.0, 0.0, 5.0).0[0].clone()]);
        let single = square(100.0, 100.0, 1.0);
        let index = ParcelIndex::bulk_load(vec![(1, multi.clone()), (2, single.clone())]);
        assert_eq!(index.get(1), Some(multi));
        assert_eq!(index.get(2), Some(single));
        assert_eq!(index.get(3), None);
    }

    #[test]
    fn insert_remove_and_replace_keep_queries_correct() {
        let mut index = ParcelIndex::bulk_load(vec![
            (1, square(0.0, 0.0, 10.0)),
            (2, square(10.0, 0.0, 10.0)),
            (3, square(100.0, 100.0, 10.0)),
        ]);
        assert_eq!(index.len(), 3);
        assert_eq!(
            sorted(index.envelope_query(&rect(1.0, 1.0, 12.0, 2.0))),
            [1, 2]
        );

        assert!(index.remove(2));
        assert!(!index.remove(2));
        assert_eq!(index.len(), 2);
        assert_eq!(index.envelope_query(&rect(1.0, 1.0, 12.0, 2.0)), [1]);
        assert_eq!(index.get(2), None);

        // Replace parcel 3 by a geometry far away: the old place is empty, the new one found.
        index.insert(3, square(500.0, 500.0, 10.0));
        assert_eq!(index.len(), 2);
        assert!(
            index
                .envelope_query(&rect(101.0, 101.0, 102.0, 102.0))
                .is_empty()
        );
        assert_eq!(index.envelope_query(&rect(501.0, 501.0, 502.0, 502.0)), [3]);

        // A new id reuses the freed slot; the query must name the new id, not the removed one.
        index.insert(7, square(10.0, 0.0, 10.0));
        assert_eq!(
            sorted(index.envelope_query(&rect(1.0, 1.0, 12.0, 2.0))),
            [1, 7]
        );
        assert_eq!(index.len(), 3);
    }

    #[test]
    fn duplicate_ids_in_bulk_load_keep_the_last() {
        let index = ParcelIndex::bulk_load(vec![
            (1, square(0.0, 0.0, 10.0)),
            (1, square(50.0, 50.0, 10.0)),
        ]);
        assert_eq!(index.len(), 1);
        assert!(index.envelope_query(&rect(1.0, 1.0, 2.0, 2.0)).is_empty());
        assert_eq!(index.envelope_query(&rect(51.0, 51.0, 52.0, 52.0)), [1]);
    }

    #[test]
    fn non_finite_parcel_is_kept_but_not_indexed() {
        let mut bad = square(0.0, 0.0, 10.0);
        bad.0[0].exterior_mut(|r| r.0[1].x = f64::NAN);
        let mut index = ParcelIndex::new();
        index.insert(9, bad);
        index.insert(10, MultiPolygon(vec![]));
        assert_eq!(index.len(), 2);
        assert!(index.envelope_query(&rect(-1e9, -1e9, 1e9, 1e9)).is_empty());
        assert!(index.remove(9));
        assert!(index.remove(10));
        assert!(index.is_empty());
    }
}
