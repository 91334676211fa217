"""`retailbot`: one command line for the technician, with subcommands from every package.

Each package adds its subcommands through the `retailbot.commands` entry point group
(`name = module:register`, where `register(subparsers)` adds a parser whose `func(args)` returns
the exit code), so the CLI grows with the robot without this file knowing every part. Plugins
import their heavy libraries inside `func`, keeping `retailbot --help` fast.
"""
from __future__ import annotations

import argparse
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
    parser.set_defaults(func=_launch, extra_positionals='arguments')


def _launch(args) -> int:
    from retail_bringup.launch_file import LaunchError, describe, load_launch, parse_launch_arguments, to_json
    if args.json and not args.show:
        print('retailbot launch: --json prints the resolved nodes and needs --show; nothing was started',
              file=sys.stderr)
        return 2
    try:
        description = load_launch(Path(args.file), parse_launch_arguments(args.arguments))
        if args.show:
            print(to_json(description) if args.json else describe(description))
            return 0
        from retail_bringup.launcher import run_launch
        return run_launch(description, grace_s=args.grace)
    except (LaunchError, LookupError) as exc:
        print(f'retailbot launch: {exc}', file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='retailbot', description='Retail service robot: run, test and service it.')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    _register_launch(subparsers)
    for entry in sorted(metadata.entry_points(group='retailbot.commands'), key=lambda e: e.name):
        try:
            entry.load()(subparsers)
        except Exception as exc:  # one broken plugin must not take the whole CLI down
            print(f'retailbot: subcommand {entry.name!r} ({entry.value}) is unavailable: {exc}',
                  file=sys.stderr)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Positional lists (e.g. launch's name:=value) may also follow the options.
    target = getattr(args, 'extra_positionals', None)
    if extra and target and not any(item.startswith('-') for item in extra):
        setattr(args, target, list(getattr(args, target)) + extra)
    elif extra:
        parser.error(f'unrecognized arguments: {" ".join(extra)}')
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == '__main__':
    sys.exit(main())
