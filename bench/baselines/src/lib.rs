//! Bench-only baseline echo servers for shardnet's side-by-side comparison
//! (`scripts/compare.sh`). The binaries are `baseline-echo` (the servers) and `idle-conns`
//! (holds idle connections open for the memory-per-connection scenario).

pub mod common;
pub mod glommio_echo;
pub mod monoio_echo;
pub mod tokio_echo;
