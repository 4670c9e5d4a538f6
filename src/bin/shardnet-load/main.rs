//! shardnet-load (placeholder).
fn main() {}
