"""A build cache shared by the cluster, served to go through GOCACHEPROG (`fgo cacheprog`).

protocol.py speaks go's JSON protocol, local.py keeps a disk tier (the head's, and each
worker's share), tier.py is the head's side of the tier held by the workers and store.py the
worker's, trust.py what heads sign, check and revoke (workers hold no key), server.py answers
go from both tiers, publish.py copies entries into the cluster tier (held.py: the archives a worker
compiled, kept for it), session.py is one fgo build's use of it all.
"""
