"""fgo: go build's compiles on a Dask cluster, byte-identical to a local go build."""

__version__ = "0.1.0"
