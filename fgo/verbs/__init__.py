"""The command-line verbs, one module each; only fgo.cli imports them."""
