"""The head node: go build driven with -toolexec, compiles dispatched to the cluster."""
