"""One module per workload; each has section(tables, meta) -> markdown lines for RESULTS.md."""
