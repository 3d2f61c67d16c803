"""What fgo build tells the cacheprog it gives go: the names of their handover's environment.

Names only: the head sets them before go build starts (fgo.cache.session), and importing
the cacheprog's server there for them cost ~10 ms of that start (its thread pool,
statistics and protocol); the server (fgo.cache.server) reads them.
"""

PENDING_ENV = "FGO_CACHE_PENDING"   # fgo build: list the puts here, publish nothing
STATS_ENV = "FGO_CACHE_STATS"       # fgo build: write the counters here at close
OUTPUTS_ENV = "FGO_CACHE_OUTPUTS"   # fgo build: its compiles' -o files (fgo.cache.outputs)
INDEX_ENV = "FGO_CACHE_INDEX"       # fgo build: the cluster tier's index, as the head read it
WANT_ENV = "FGO_CACHE_WANT"         # fgo build: the doorbell that asks the head to connect
CHECK_AFTER_ENV = "FGO_CACHE_CHECK_AFTER"  # fgo build: log workers' hits here, for its check
REVOKED_ENV = "FGO_CACHE_REVOKED"   # fgo build: the kept revocations are all the cluster's
