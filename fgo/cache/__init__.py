"""A build cache shared by the cluster, served to go through GOCACHEPROG (`fgo cacheprog`).

protocol.py speaks go's JSON protocol, local.py keeps a disk tier (the head's, and each
worker's share), cluster.py the tier held by the workers, server.py answers go from both,
publish.py copies entries into the cluster tier, session.py is one fgo build's use of it all.
"""
