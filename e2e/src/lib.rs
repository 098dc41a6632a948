//! The end-to-end harness: a whole local stack — the internet and extranet zone servers and
//! their ferry agents — started from the real binaries on loopback ports and temporary folders,
//! as `deploy/local/run.sh` starts it for a person. Tests then act only as users do: over HTTP
//! and through the ferry's folders.
//!
//! The binaries are taken from the Cargo target folder this test was built into
//! (`cargo test --workspace` builds them); a missing one is a clear error saying what to build.

mod stack;

pub use stack::{Stack, StackOptions, binary};
