"""The patched `go tool compile` (patches/<go version>/): building it (patched), the flags
it adds (flags), early export data (early_export) and the harness that checks a split
against a stock compile (harness, `fgo split-compile`). Runs on the head and the workers."""
