//! Wire protocols used by the example servers and the load generator (placeholder).
