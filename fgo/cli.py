"""The `fgo` command line: one module per verb, loaded only when that verb runs.

Loading lazily keeps `fgo --help` and the error paths fast: `fgo build` must
answer bad input within a fraction of a second, and importing dask costs ~1 s.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

# verb -> ("module:click command", one-line help); each verb lives in its own module.
VERBS = {
    "build": ("fgo.verbs.build:build", "Build a Go project, compiling its packages on a Dask cluster."),
    "plan": ("fgo.verbs.plan:plan", "Show the action graph and what --split-large would split."),
    "toolchain": ("fgo.verbs.toolchain:toolchain_cmd", "Build (if needed) and print the patched compiler."),
    "split-compile": ("fgo.verbs.split_compile:split_compile_cmd",
                      "Compile packages as shards + leader and compare with a stock compile."),
    "diff": ("fgo.verbs.diff:diff_cmd", "Compare two archives or binaries down to the symbol."),
    "verify": ("fgo.verbs.verify:verify_cmd", "Build several ways and explain any difference."),
    "cacheprog": ("fgo.verbs.cacheprog:cacheprog_cmd",
                  "Serve go's build cache (GOCACHEPROG) from this host and the cluster."),
    "cache": ("fgo.verbs.cache:cache_cmd", "Show, trim or clear the shared build cache."),
    "worker-setup": ("fgo.verbs.worker_setup:worker_setup", "Prepare this machine as a worker (toolchain, patched compiler)."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(VERBS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, VERBS[name][1]) for name in self.list_commands(ctx)])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in VERBS:
            return None
        module, attr = VERBS[name][0].split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise click.ClickException(f"'fgo {name}' is not available: {exc}") from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fgo")
def cli() -> None:
    """fgo: a distributed Go compiler (go build's compiles on a Dask cluster)."""


def main() -> None:
    """Entry point: every error is one line on stderr and a non-zero exit, never a traceback."""
    from fgo.errors import FgoError
    try:
        code = cli(standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.Abort:
        click.echo("fgo: interrupted", err=True)
        code = 130
    except KeyboardInterrupt:
        click.echo("fgo: interrupted", err=True)
        code = 130
    except click.exceptions.NoArgsIsHelpError as exc:  # bare `fgo`: the usage, as click shows it
        exc.show()
        code = exc.exit_code
    except click.ClickException as exc:
        click.echo(f"fgo: error: {exc.format_message()}", err=True)
        code = exc.exit_code
    except FgoError as exc:
        click.echo(exc.line(), err=True)
        code = exc.code
    except Exception as exc:  # a bug of ours: still one line (FGO_DEBUG=1 for the traceback)
        if os.environ.get("FGO_DEBUG"):
            raise
        click.echo(f"fgo: internal error: {type(exc).__name__}: {exc} (FGO_DEBUG=1 shows where)",
                   err=True)
        code = 3
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
