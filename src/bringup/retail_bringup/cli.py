"""`retailbot`: one command line for the technician, with subcommands from every package.

Each package adds its subcommands through the `retailbot.commands` entry point group
(`name = module:register`, where `register(subparsers)` adds a parser whose `func(args)` returns
the exit code), so the CLI grows with the robot without this file knowing every part. Plugins
import their heavy libraries inside `func`, keeping `retailbot --help` fast.

Conventions every subcommand gets from RetailbotParser: option values may be negative numbers and
number lists (`--from -8,-3`), required options say "(required)" in --help, positional values may
follow options where a subcommand asks for it (`intermixed`, e.g. launch), a long option is
only taken whole (`--datab` is an unknown option, never `--database`: an abbreviation accepted
today would change meaning the day another option starting with it is added), and exit codes are
0 done, 1 failed, 2 bad input or usage, 3 the robot could not do it (no path, safety stop),
128+n when stopped by signal n (130 Ctrl-C, 143 SIGTERM).
"""
from __future__ import annotations

import argparse
import re
import signal
import sys
from importlib import metadata
from pathlib import Path


def _register_launch(subparsers) -> None:
    parser = subparsers.add_parser(
        'launch', help='run a YAML launch file (what `ros2 launch` does on a full ROS install)',
        description='Start the nodes of a ROS 2 YAML launch file, each as its own process, and '
                    'look after them until Ctrl-C.')
    parser.add_argument('file', help='launch file, e.g. launch/robot.launch.yaml')
    parser.add_argument('arguments', nargs='*', metavar='name:=value',
                        help='launch arguments (before or after the options)')
    parser.add_argument('--show', action='store_true', help='print the resolved nodes and exit')
    parser.add_argument('--json', action='store_true', help='with --show: print JSON')
    parser.add_argument('--grace', type=float, default=5.0, metavar='S',
                        help='seconds each node gets to stop before the next signal (default 5)')
    parser.epilog = ('Exit codes: 0 stopped on request, 1 a node failed and every node was stopped, '
                     '2 bad launch file or arguments, or nodes of this launch already running, '
                     '128+N stopped by signal N (130 Ctrl-C, 143 SIGTERM).')
    parser.set_defaults(func=_launch, intermixed='arguments')


def _launch(args) -> int:
    from retail_ros.launch_file import LaunchError, describe, load_launch, parse_launch_arguments, to_json
    if args.json and not args.show:      # a script asking for JSON must never start the robot
        print('retailbot launch: --json prints the resolved nodes and needs --show; nothing was started',
              file=sys.stderr)
        return 2
    try:
        description = load_launch(Path(args.file), parse_launch_arguments(args.arguments))
        for warning in description.warnings:
            print(f'retailbot launch: warning: {warning}', file=sys.stderr)
        if args.show:
            print(to_json(description) if args.json else describe(description))
            return 0
        from retail_ros.launcher import run_launch
        return run_launch(description, grace_s=args.grace)
    except (LaunchError, LookupError) as exc:
        print(f'retailbot launch: {exc}', file=sys.stderr)
        return 2


# A negative number or a comma-separated list of numbers is a value, never an option: --from -8,-3.
_NUMBER = r'-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?'
NEGATIVE_VALUE = re.compile(rf'^-(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?:,\s*{_NUMBER})*$')


class RetailbotParser(argparse.ArgumentParser):
    """ArgumentParser with the retailbot conventions; subparsers inherit the class (argparse's
    add_parser builds each with the parent's class and its own allow_abbrev, default True: so
    the refusal of abbreviations is set here, for every parser, not passed by each caller)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs['allow_abbrev'] = False
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_VALUE

    def add_argument(self, *args, **kwargs):
        if kwargs.get('required') and args and str(args[0]).startswith('-'):
            text = kwargs.get('help') or ''
            if argparse.SUPPRESS != text and '(required)' not in text:
                kwargs['help'] = f'{text} (required)' if text else '(required)'
        return super().add_argument(*args, **kwargs)


class Stopped(BaseException):
    """Raised in the main thread by SIGTERM/SIGHUP so `finally` blocks run (a jog stops the base)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum, frame) -> None:
    raise Stopped(signum)


def build_parser() -> argparse.ArgumentParser:
    parser = RetailbotParser(
        prog='retailbot', description='Retail service robot: run, test and service it.',
        epilog='Exit codes: 0 done, 1 failed, 2 bad input or usage, 3 the robot could not do it '
               '(no path, safety stop), 128+n stopped by signal n (130 Ctrl-C, 143 SIGTERM).')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    _register_launch(subparsers)
    for entry in sorted(metadata.entry_points(group='retailbot.commands'), key=lambda e: e.name):
        try:
            entry.load()(subparsers)
        except Exception as exc:  # one broken plugin must not take the whole CLI down
            print(f'retailbot: subcommand {entry.name!r} ({entry.value}) is unavailable: {exc}',
                  file=sys.stderr)
    for each in parsers(parser):        # a plugin's own parser_class too: whole options only
        each.allow_abbrev = False
    return parser


def parsers(parser: argparse.ArgumentParser):
    """`parser` and every subcommand's parser under it, depth first."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):    # an alias maps to the same parser
                yield from parsers(child)


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """parse_args, except that a subcommand whose parser sets `intermixed=DEST` also takes its
    positional values after its options (`launch FILE --show sim:=true`)."""
    args, extra = parser.parse_known_args(argv)
    target = getattr(args, 'intermixed', None)
    if extra and target and not any(value.startswith('-') for value in extra):
        setattr(args, target, list(getattr(args, target) or []) + extra)
    elif extra:
        parser.error(f'unrecognized arguments: {" ".join(extra)}')
    return args


def main(argv: list[str] | None = None) -> int:
    # A subcommand may install its own handlers instead (launch, base sim); restored on return so
    # an in-process caller (tests) keeps its own.
    previous = {signum: signal.signal(signum, _raise_stopped) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        args = parse_args(build_parser(), argv)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    except Stopped as stop:
        return 128 + stop.signum
    except BrokenPipeError:
        return 0
    finally:
        for signum, handler in previous.items():
            if handler is not None:          # None: installed outside Python, cannot be put back
                signal.signal(signum, handler)


if __name__ == '__main__':
    sys.exit(main())
