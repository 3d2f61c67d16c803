"""--split-large: the head side (dispatch), the worker side (shard_task), the patched
compiler (compiler) and its harness (harness)."""
