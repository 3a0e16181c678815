"""The Typer app and its command classes.

Two things Click does not do for us live here: negative numbers as data
(``softmax probs 1 -inf 2 -f json``), and the one place where every error
becomes ``error: WHAT (WHERE)`` on standard error and the contract's exit
status: the project's errors, running out of memory, a reader that went away
(exit 0, quietly), and standard output that cannot take what was printed
(:func:`run`).
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import sys
from collections.abc import Callable
from typing import Annotated, NoReturn

import typer
from typer.core import TyperCommand, TyperGroup

from . import __version__
from .errors import GateFailed, InputError, OutputError, SoftmaxError, UsageError
from .helpformat import HelpContext
from .options import OUTPUT, PANELS
from .reporter import in_invocation, reporter, settled

# A token that starts like a negative number (-1, -.5, -inf, -nan, "-1 2; 3 4")
# is data, never an option, even though it begins with '-'.
_NEGATIVE_NUMBER = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


def separate_numbers(args: list[str], value_options: set[str]) -> list[str]:
    """Move positional tokens behind ``--`` so negative numbers are not read as options.

    Click would read ``-inf`` as the short options ``-i -n -f`` and ``-1`` as an
    unknown option. Options keep their order and their values (``--ignore-index
    -100`` stays an option value); positionals keep their order after ``--``.
    """
    options: list[str] = []
    positionals: list[str] = []
    tokens = iter(args)
    for token in tokens:
        if token == "--":
            positionals.extend(tokens)
        elif token in value_options:
            following = next(tokens, None)
            if following is None:  # let Click say that the option needs a value
                return list(args)
            options += [token, following]
        elif token.startswith("-") and len(token) > 1 and not _NEGATIVE_NUMBER.match(token):
            options.append(token)
        else:
            positionals.append(token)
    return options + (["--", *positionals] if positionals else [])


def _exit_with(error: SoftmaxError) -> NoReturn:
    """The one place an error ends a run: its line through the reporter, then the exit status."""
    reporter().error(error)
    raise typer.Exit(error.exit_code) from None


def _owners(option: str, ctx) -> list[str]:
    """The other commands that take ``option`` (visibly), for an unknown option's message."""
    root = ctx.find_root()
    commands = {name: root.command.get_command(root, name) for name in root.command.list_commands(root)}
    return [f"{root.command_path} {name}" for name, command in commands.items()
            if name != ctx.info_name and any(option in param.opts and not getattr(param, "hidden", False)
                                             for param in command.params)]


def _unknown_option(error, ctx) -> str | None:
    """The option a parser error is about when this command has no such option (Click's NoSuchOption)."""
    option = getattr(error, "option_name", None)
    if not option or any(option in (*param.opts, *param.secondary_opts) for param in ctx.command.params):
        return None
    return option


def _nearest_own_option(option: str, ctx) -> str | None:
    """This command's option nearest to ``option`` by its long name elsewhere (``-t``, ``--temperature`` in probs,
    is ``--temperatures`` in temperature-sweep)."""
    import difflib

    root = ctx.find_root()
    names = {option}
    for name in root.command.list_commands(root):
        for param in getattr(root.command.get_command(root, name), "params", []):
            if option in param.opts:
                names.update(opt for opt in param.opts if opt.startswith("--"))
    own = [opt for param in ctx.command.params if not getattr(param, "hidden", False) for opt in param.opts
           if opt.startswith("--")]
    for name in sorted(names, key=len, reverse=True):
        if found := difflib.get_close_matches(name, own, n=1, cutoff=0.8):
            return found[0]
    return None


def _from_parser(error, ctx) -> UsageError:
    context = getattr(error, "ctx", None) or ctx
    path = context.command_path
    unknown = _unknown_option(error, context)
    owners = _owners(unknown, context) if unknown else []
    if owners:
        near = _nearest_own_option(unknown, context)
        instead = f"; did you mean {near}?" if near else ""
        return UsageError(f"{unknown} is an option of {' and '.join(owners)}, not of {path}{instead}",
                          where=f"see '{path if near else owners[0]} --help'")
    return UsageError(error.format_message(), where=f"see '{path} --help'")


def _parsing(parse, ctx):
    """Click's parsing, which prints help and the version: a parser error is one ``error:`` line.

    A reader that went away while help was printed (`softmax --help | head -0`)
    is no failure: exit 0 quietly (Click would swap standard output for a
    wrapper of its own and exit 1).
    """
    try:
        return parse()
    except typer.TyperException as error:  # every error of Click's parsing (Typer exports their base)
        _exit_with(_from_parser(error, ctx))
    except SoftmaxError as error:  # an option's own rule (options.Opt.check): its one wording
        _exit_with(error)
    except BrokenPipeError:
        _reader_gone()
        raise typer.Exit(0) from None


class SoftmaxGroup(TyperGroup):
    """The top level: an unknown command or option is one ``error: ...`` line too.

    A command is imported and built only when it is asked for (Click's LazyGroup
    pattern): ``lazy_commands`` maps each name to its summary line and what
    builds it (filled by :mod:`softmax_cli.cli`), so ``softmax probs ...`` loads
    one command module and ``softmax --help`` none.
    """

    lazy_commands: dict = {}  # name -> (summary, build)

    def list_commands(self, ctx):
        return [*super().list_commands(ctx), *(name for name in self.lazy_commands if name not in self.commands)]

    def get_command(self, ctx, name):
        if name not in self.commands and name in self.lazy_commands:
            self.add_command(self.lazy_commands[name][1](), name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx, formatter) -> None:
        """The commands and their summaries, from the table: listing them builds none."""
        rows = [(name, self.lazy_commands[name][0] if name in self.lazy_commands
                 else self.commands[name].get_short_help_str()) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    context_class = HelpContext

    def main(self, *args, **kwargs):
        """Every run (the console script, Typer's test runner) is one invocation with its own state."""
        return in_invocation(super().main, *args, **kwargs)

    def parse_args(self, ctx, args):
        return _parsing(lambda: self._parse(ctx, args), ctx)

    def _parse(self, ctx, args):
        if not args and not ctx.resilient_parsing:  # plain `softmax`: the help, as a start, not as an error
            print(ctx.get_help())
            raise typer.Exit(0)
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx, args):
        try:
            return super().resolve_command(ctx, args)
        except typer.TyperException as error:
            _exit_with(_from_parser(error, ctx))


QuietOpt = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="No note: or warning: lines on standard error (errors, failed: and gate "
                 "failed: lines stay).", rich_help_panel=OUTPUT),
]


def with_quiet(command: Callable) -> Callable:
    """``command`` with ``--quiet/-q``, which is the reporter's: the command function never sees it."""
    signature = inspect.signature(command)
    quiet = inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=QuietOpt)

    @functools.wraps(command)
    def quietly(*, quiet: bool = False, **values):
        reporter().quiet = quiet
        return command(**values)

    quietly.__signature__ = signature.replace(parameters=[*signature.parameters.values(), quiet])
    quietly.__annotations__ = {**getattr(command, "__annotations__", {}), "quiet": QuietOpt}
    return quietly


class SoftmaxCommand(TyperCommand):
    """A command that takes negative numbers as data and reports errors as ``error: ...``."""

    context_class = HelpContext

    def parse_args(self, ctx, args):
        value_options = {
            name
            for param in self.params
            if param.param_type_name == "option" and not getattr(param, "is_flag", False)
            for name in (*param.opts, *param.secondary_opts)
        }
        return _parsing(lambda: super(SoftmaxCommand, self).parse_args(ctx, separate_numbers(list(args), value_options)),
                        ctx)

    def collect_usage_pieces(self, ctx) -> list[str]:
        """The usage line with each argument as its metavar says (Typer wraps a required one in braces)."""
        return [piece[1:-1] if piece[:1] == "{" and piece[-1:] == "}" else piece
                for piece in super().collect_usage_pieces(ctx)]

    def get_short_help_str(self, limit: int = 45) -> str:
        """The summary line in ``softmax --help``: the docstring's first paragraph, whole (Click cuts it)."""
        return " ".join((self.help or "").split("\n\n")[0].split())

    def format_options(self, ctx, formatter) -> None:
        """Arguments, then options under their panels in the order of ``PANELS``, then the rest.

        Typer draws ``rich_help_panel`` only with Rich markup, which the app leaves
        off so that help and every command start without importing Rich.
        """
        sections: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                title = "Arguments" if param.param_type_name == "argument" else (
                    getattr(param, "rich_help_panel", None) or "Options")
                sections.setdefault(title, []).append(record)
        order = ("Arguments", *PANELS, "Options")
        for title in sorted(sections, key=lambda t: order.index(t) if t in order else len(order)):
            with formatter.section(title):
                formatter.write_dl(sections[title])

    def invoke(self, ctx):
        try:
            result = super().invoke(ctx)
        except SoftmaxError as error:
            settled()
            reporter().end_telling(show=isinstance(error, GateFailed))
            _exit_with(error)
        except MemoryError as error:
            settled()
            reporter().end_telling(show=False)
            # What was checked up front (limits.check_memory) says what it needs; this is the rest.
            _exit_with(InputError(f"out of memory{': ' + str(error) if str(error) else ''}; the input or the "
                                  "result is larger than this process can hold"))
        except BrokenPipeError:
            settled()
            reporter().end_telling(show=True)
            _reader_gone()
            raise typer.Exit(0) from None
        except BaseException:
            reporter().end_telling(show=False)
            raise
        settled()  # the work is done and its outputs are in place: a late signal no longer changes the outcome
        reporter().end_telling(show=True)
        return result


def _reader_gone() -> None:
    """The reader went away (`| head`): what Python still holds goes to /dev/null, so the flush at exit is quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def run(application) -> NoReturn:
    """Run the app as the ``softmax`` command; what is printed (help, version) is flushed here, not at exit.

    Python's own flush at exit would print a traceback-like "Exception
    ignored" for standard output on a full device (``> /dev/full``).
    """
    in_invocation(_run, application)


def _run(application) -> NoReturn:
    if "_SOFTMAX_COMPLETE" in os.environ:  # the shell asks for completions (the script of --show-completion)
        import typer.completion

        typer.completion.completion_init()  # Typer's bash/zsh/fish/powershell protocol, registered only then
    try:
        application(prog_name="softmax")
        status = 0
    except SystemExit as exit:
        status = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 2)
    except OSError as error:
        # Outside a command's run (its errors are handled in invoke) only help and version write: to stdout.
        _reader_gone()
        failure = OutputError(f"cannot write to standard output: {error.strerror}")
        reporter().error(failure)
        sys.exit(failure.exit_code)
    try:
        if sys.stdout is not None and not sys.stdout.closed:  # an output fault may have closed it already
            sys.stdout.flush()
    except BrokenPipeError:
        _reader_gone()
    except OSError as error:
        _reader_gone()
        if status == 0:
            failure = OutputError(f"cannot write to standard output: {error.strerror}")
            reporter().error(failure)
            status = failure.exit_code
    sys.exit(status)


app = typer.Typer(
    name="softmax",
    cls=SoftmaxGroup,
    help="The softmax function and everything around it: probabilities, losses, gradients, "
    "Jacobians, temperature, top-k and attention, exact and fast.",
    epilog="""\b
Typical pipelines:
  cat logits.csv | softmax probs -f json
  softmax loss val.npy --labels val_labels.npy --max-loss 0.35  # CI gate
  softmax probs runs/ --out-dir probs/ -f npy                   # a batch""",
    no_args_is_help=True,
    # Typer's own completion options guess the shell from the process tree and, when the guess is `sh` or
    # nothing (a container, a CI step), end with exit 1 and ignore the shell typed after them: ours take it.
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        print(f"softmax {__version__}")
        raise typer.Exit()


SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def _completion(install: bool):
    """The callback of ``--install-completion SHELL`` (install) or ``--show-completion SHELL`` (print the script)."""

    def callback(shell: str | None) -> None:
        if shell is None:
            return
        if shell not in SHELLS:
            option = "--install-completion" if install else "--show-completion"
            raise UsageError(f"{option} takes one of {', '.join(SHELLS)}, got {shell}")
        import typer.completion

        if install:
            _, path = typer.completion.install(shell=shell, prog_name="softmax", complete_var="_SOFTMAX_COMPLETE")
            print(f"{shell} completion installed in {path}; it takes effect in a new shell")
        else:
            print(typer.completion.get_completion_script(prog_name="softmax", complete_var="_SOFTMAX_COMPLETE",
                                                         shell=shell))
        raise typer.Exit()

    return callback


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", help="Print the version and exit.", is_eager=True,
                                 callback=_print_version),
    install_completion: str = typer.Option(None, "--install-completion", metavar="SHELL", is_eager=True,
                                           expose_value=False, callback=_completion(install=True),
                                           help=f"Install completion for SHELL ({', '.join(SHELLS)})."),
    show_completion: str = typer.Option(None, "--show-completion", metavar="SHELL", is_eager=True,
                                        expose_value=False, callback=_completion(install=False),
                                        help="Print the completion script for SHELL, to install it by hand."),
) -> None:
    """Exit status: 0 success, 1 a gate failed, 2 bad usage or bad input."""


