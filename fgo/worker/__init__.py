"""What runs on a worker, and what the head shares with it: the task protocol, blobs and
stores, compile-argument rewriting, the executor."""
