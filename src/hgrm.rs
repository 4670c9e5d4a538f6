//! HdrHistogram percentile-distribution text output (placeholder, filled in by the load-generator work).
