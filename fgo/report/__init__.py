"""The build report (record) and its Chrome trace (trace)."""
