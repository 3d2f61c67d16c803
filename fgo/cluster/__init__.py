"""The Dask adapter: connecting to a cluster (connect), deadlines on every call into it
(deadline), and the client side of the handlers fgo installs on each worker (rpc). Used by
the head node, the cache's head side and the verbs; it imports nothing of the worker."""
