"""A build cache shared by the cluster, served to go through GOCACHEPROG (`fgo cacheprog`).

protocol.py speaks go's JSON protocol, local.py keeps the head's disk tier, cluster.py the
tier held in the workers' stores, server.py answers go from both, publish.py moves verified
entries into the cluster tier.
"""
