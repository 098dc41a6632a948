//! The parcel index benchmark (`cargo bench -p ow-spatial`): build the index of 1,000,000
//! synthetic parcels, the overlap check of one new parcel, and the check suite of a 1,000-parcel
//! package, each beside a reference measured in the same run (the R-tree envelope query alone).
//! Figures and the machine's load go to stdout; `docs/benchmarks.md` records one run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use geo::{BoundingRect, Coord, LineString, MultiPolygon, Polygon};
use ow_spatial::{ParcelId, ParcelIndex, Tolerance};
use peak_alloc::PeakAlloc;

/// Counts the bytes live on the heap (requested sizes, without the allocator's own overhead).
#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// Parcels per row and per column of the synthetic city (1,000 × 1,000). `OW_SPATIAL_BENCH_SIDE`
/// sets a smaller city for a quick smoke run; the recorded figures are for the default.
const DEFAULT_SIDE: usize = 1000;

fn side() -> usize {
    std::env::var("OW_SPATIAL_BENCH_SIDE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n: &usize| n >= 10)
        .unwrap_or(DEFAULT_SIDE)
}
/// A parcel's cell: 20 m frontage, 25 m deep; blocks of 4 × 5 parcels with 12 m streets.
const CELL_W: f64 = 20.0;
const CELL_H: f64 = 25.0;
const BLOCK: (usize, usize) = (4, 5);
const STREET: f64 = 12.0;
const ORIGIN: (f64, f64) = (400_000.0, 3_300_000.0);

const CANDIDATES: usize = 10_000;
const PACKAGE: usize = 1_000;

/// A small deterministic generator (SplitMix64): the benchmark must draw the same city every
/// run, and the workspace has no random-number crate to lean on for that alone.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

fn id_of(i: usize, j: usize) -> ParcelId {
    (i * 1_000_000 + j) as ParcelId
}

/// The south-west corner of cell (column i, row j).
fn cell_origin(i: usize, j: usize) -> (f64, f64) {
    (
        ORIGIN.0 + i as f64 * CELL_W + (i / BLOCK.0) as f64 * STREET,
        ORIGIN.1 + j as f64 * CELL_H + (j / BLOCK.1) as f64 * STREET,
    )
}

/// A jittered parcel of 5–10 points inside its cell: the cell's corners and some points on its
/// edges, each set in by up to 0.3 m, so parcels of a block nearly share their boundaries.
fn parcel(rng: &mut Rng, i: usize, j: usize) -> MultiPolygon<f64> {
    let (x0, y0) = cell_origin(i, j);
    let extra = (rng.next() % 6) as usize; // 0..=5 points on the edges: 5–10 points in all
    let perimeter = 2.0 * (CELL_W + CELL_H);
    let mut at: Vec<f64> = (0..extra).map(|_| rng.range(0.0, perimeter)).collect();
    at.extend([0.0, CELL_W, CELL_W + CELL_H, 2.0 * CELL_W + CELL_H]);
    at.sort_by(f64::total_cmp);
    let mut ring: Vec<Coord<f64>> = at
        .iter()
        .map(|&s| {
            let inset = rng.range(0.0, 0.3);
            let inset2 = rng.range(0.0, 0.3);
            // Walk the cell's boundary counter-clockwise from the south-west corner.
            let (x, y) = if s < CELL_W {
                (s, 0.0)
            } else if s < CELL_W + CELL_H {
                (CELL_W, s - CELL_W)
            } else if s < 2.0 * CELL_W + CELL_H {
                (CELL_W - (s - CELL_W - CELL_H), CELL_H)
            } else {
                (0.0, CELL_H - (s - 2.0 * CELL_W - CELL_H))
            };
            // Set in towards the cell's middle on both axes (corners move diagonally).
            let x = if x <= 0.0 {
                inset
            } else if x >= CELL_W {
                CELL_W - inset
            } else {
                x
            };
            let y = if y <= 0.0 {
                inset2
            } else if y >= CELL_H {
                CELL_H - inset2
            } else {
                y
            };
            Coord {
                x: x0 + x,
                y: y0 + y,
            }
        })
        .collect();
    ring.push(ring[0]);
    MultiPolygon(vec![Polygon::new(LineString(ring), vec![])])
}

/// A new survey of an existing parcel: its points moved by up to 2 mm and the whole shifted by up
/// to 1.5 m, so it overlaps its predecessor and often a neighbour.
fn candidate(rng: &mut Rng, city_rng_seed: u64, side: usize) -> (usize, usize, MultiPolygon<f64>) {
    let i = (rng.next() % (side as u64 - 1)) as usize;
    let j = (rng.next() % side as u64) as usize;
    // Rebuild the parcel exactly as the city did (same per-cell seed).
    let mut cell_rng =
        Rng(city_rng_seed ^ (id_of(i, j) as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
    let mut g = parcel(&mut cell_rng, i, j);
    let (dx, dy) = (rng.range(-1.5, 1.5), rng.range(-1.5, 1.5));
    g.0[0].exterior_mut(|ring| {
        let n = ring.0.len();
        for c in &mut ring.0[..n - 1] {
            c.x += dx + rng.range(-0.002, 0.002);
            c.y += dy + rng.range(-0.002, 0.002);
        }
        ring.0[n - 1] = ring.0[0];
    });
    (i, j, g)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let k = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[k.min(sorted.len() - 1)]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    const SEED: u64 = 0x0E57_2026;
    let side = side();
    println!("ow-spatial index benchmark");
    println!("load average before: {}", loadavg());
    println!(
        "cpus: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // The city: one generator per cell so a candidate can redraw its parcel.
    let baseline = ALLOCATOR.current_usage();
    let t = Instant::now();
    let mut parcels = Vec::with_capacity(side * side);
    let mut points = 0usize;
    for i in 0..side {
        for j in 0..side {
            let mut rng = Rng(SEED ^ (id_of(i, j) as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
            let g = parcel(&mut rng, i, j);
            points += g.0[0].exterior().0.len() - 1;
            parcels.push((id_of(i, j), g));
        }
    }
    let generate = t.elapsed();
    let input_bytes = ALLOCATOR.current_usage() - baseline;
    ALLOCATOR.reset_peak_usage();

    let t = Instant::now();
    let index = ParcelIndex::bulk_load(parcels);
    let build = t.elapsed();
    let index_bytes = ALLOCATOR.current_usage() - baseline;
    let build_peak = ALLOCATOR.peak_usage() - baseline;
    println!(
        "generated {} parcels ({} points, {:.1} per parcel) in {:.2} s; as geo MultiPolygons they take {:.0} MB",
        index.len(),
        points,
        points as f64 / index.len() as f64,
        generate.as_secs_f64(),
        input_bytes as f64 / 1e6
    );

    // Candidates.
    let tol = Tolerance::default();
    let mut rng = Rng(SEED.rotate_left(17));
    let candidates: Vec<(usize, usize, MultiPolygon<f64>)> = (0..CANDIDATES)
        .map(|_| candidate(&mut rng, SEED, side))
        .collect();

    // Warm up both paths once over a few candidates.
    for (_, _, g) in candidates.iter().take(100) {
        std::hint::black_box(index.overlaps(g, &tol));
        std::hint::black_box(index.envelope_query(&g.bounding_rect().unwrap()));
    }

    let mut reference = Vec::with_capacity(CANDIDATES);
    let mut overlap = Vec::with_capacity(CANDIDATES);
    let mut found = 0usize;
    let mut hits = 0usize;
    for (_, _, g) in &candidates {
        let t = Instant::now();
        let rect = g.bounding_rect().unwrap();
        let ids = std::hint::black_box(index.envelope_query(&rect));
        reference.push(t.elapsed());
        hits += ids.len();

        let t = Instant::now();
        let o = std::hint::black_box(index.overlaps(g, &tol));
        overlap.push(t.elapsed());
        found += o.len();
    }
    reference.sort();
    overlap.sort();

    // A package of 1,000 parcels checked in one go: overlaps, and the gap to the east neighbour
    // each claims to share a boundary with.
    let package = &candidates[..PACKAGE];
    let t = Instant::now();
    let mut suite_findings = 0usize;
    for (i, j, g) in package {
        suite_findings += index.overlaps(g, &tol).len();
        if index.gap_to(g, id_of(i + 1, *j), &tol).unwrap().is_some() {
            suite_findings += 1;
        }
    }
    let suite = t.elapsed();
    let t = Instant::now();
    for (i, j, g) in package {
        std::hint::black_box(index.envelope_query(&g.bounding_rect().unwrap()));
        std::hint::black_box(index.contains(id_of(i + 1, *j)));
    }
    let suite_reference = t.elapsed();

    let (r50, r99) = (percentile(&reference, 0.50), percentile(&reference, 0.99));
    let (o50, o99) = (percentile(&overlap, 0.50), percentile(&overlap, 0.99));
    println!();
    println!("| measure | figure | target | reference (envelope query alone) | ratio |");
    println!("|---|---|---|---|---|");
    println!(
        "| bulk_load of {} parcels | {:.2} s | ≤ 2 s | — | — |",
        index.len(),
        build.as_secs_f64()
    );
    println!(
        "| bytes live after build | {:.0} MB ({:.0} B/parcel) | ≤ 500 MB | input as geo types: {:.0} MB | {:.2} |",
        index_bytes as f64 / 1e6,
        index_bytes as f64 / index.len() as f64,
        input_bytes as f64 / 1e6,
        index_bytes as f64 / input_bytes as f64
    );
    println!(
        "| peak during build (input + index) | {:.0} MB | — | — | — |",
        build_peak as f64 / 1e6
    );
    println!(
        "| overlaps p50 ({CANDIDATES} candidates) | {:.1} µs | — | {:.1} µs | {:.1}× |",
        micros(o50),
        micros(r50),
        micros(o50) / micros(r50)
    );
    println!(
        "| overlaps p99 | {:.1} µs | ≤ 100 µs | {:.1} µs | {:.1}× |",
        micros(o99),
        micros(r99),
        micros(o99) / micros(r99)
    );
    println!(
        "| suite, {PACKAGE}-parcel package (overlaps + gap) | {:.3} s | < 0.5 s | {:.4} s | {:.0}× |",
        suite.as_secs_f64(),
        suite_reference.as_secs_f64(),
        suite.as_secs_f64() / suite_reference.as_secs_f64()
    );
    println!();
    println!(
        "envelope hits per candidate: {:.2}; overlaps reported per candidate: {:.2}; findings in the package: {}",
        hits as f64 / CANDIDATES as f64,
        found as f64 / CANDIDATES as f64,
        suite_findings
    );
    println!("load average after: {}", loadavg());
    drop(index);
}
