"""`retailbot plan`: plan a path on a store map from the command line (technician, scripts, demo).

--from and --to take map coordinates (`-8,-3`: negative values are fine) or a zone by id or by
its Chinese or English name in any case (`kitchen`, `厨房电器区`, `"Kitchen Appliances"`).
Exit codes: 0 path found, 1 the picture could not be written, 2 bad arguments / map / zones /
unknown zone, 3 no path (start or goal outside the map or blocked, goal unreachable).
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path


def _point(text: str) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected X,Y in metres, got {text!r}') from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise argparse.ArgumentTypeError(f'expected finite X,Y in metres, got {text!r}')
    return x, y


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        'plan', help='plan a path on a store map',
        description='Plan the shortest safe path between two points (or to a named zone) on a '
                    'map_server map; every path point keeps --radius metres from shelves, walls '
                    'and unmapped space.',
        epilog='Exit codes: 0 path found, 1 the picture could not be written, 2 bad arguments, map, zones '
               'or unknown zone, 3 no path.')
    parser.add_argument('--map', required=True, help='map YAML (map_server format)')
    parser.add_argument('--from', dest='start', required=True, metavar='X,Y|ZONE',
                        help='start: map metres (e.g. -8,-3) or a zone id or name (e.g. dock, 入口)')
    parser.add_argument('--to', dest='goal', required=True, metavar='X,Y|ZONE',
                        help='goal: map metres or a zone id or name, any case (e.g. kitchen, 厨房电器区, '
                             '"Kitchen Appliances")')
    parser.add_argument('--zones', metavar='FILE',
                        help='zones file (default: zones.yaml beside the map; needed for a zone name)')
    parser.add_argument('--radius', type=float, default=0.25, metavar='R',
                        help='clearance in metres every path point keeps (robot radius + margin, default 0.25)')
    parser.add_argument('--step', type=float, default=None, metavar='M',
                        help='spacing of the printed path points (default: the map resolution)')
    parser.add_argument('--json', action='store_true', help='print {"path", "length_m", "plan_ms"} as JSON')
    parser.add_argument('--png', metavar='OUT', help='also draw the map, zones and path into this PNG')
    parser.set_defaults(func=run)


def _fail(message: str, code: int) -> int:
    print(f'retailbot plan: {message}', file=sys.stderr)
    return code


class _Refused(Exception):
    """A one-line reason and the exit code of the command."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except _Refused as exc:
        return _fail(str(exc), exc.code)


def _run(args: argparse.Namespace) -> int:
    from retail_navigation.costmap import Costmap
    from retail_navigation.maps import MapError, load_map
    from retail_navigation.planner import GlobalPlanner, PlanError, densify

    _check_numbers(args)
    map_path = Path(args.map)
    try:
        store_map = load_map(map_path)
    except MapError as exc:
        raise _Refused(str(exc), 2) from None
    if args.png:
        png_folder = Path(args.png).expanduser().absolute().parent
        if not png_folder.is_dir():
            raise _Refused(f'cannot write --png {args.png}: folder {png_folder} does not exist', 2)
    zones_path = Path(args.zones) if args.zones else map_path.with_name('zones.yaml')
    (start, goal), zones = _places(args, zones_path)
    costmap = Costmap(store_map, robot_radius=args.radius)
    planner = GlobalPlanner(costmap)
    planner.prepare()
    costmap.components()
    try:
        plan = planner.plan(start, goal)
    except PlanError as exc:
        raise _Refused(str(exc), 3) from None
    points = densify(plan.path, args.step or store_map.resolution)
    if args.png:
        _draw(args.png, store_map, zones, zones_path, plan.path)
    if args.json:
        from retail_common.cli_output import print_json
        print_json({'path': [[round(x, 4), round(y, 4)] for x, y in points],
                    'length_m': round(plan.length_m, 4), 'plan_ms': round(plan.plan_ms, 3)})
    else:
        print(f'path of {plan.length_m:.2f} m with {len(plan.path)} corners, planned in {plan.plan_ms:.1f} ms')
        for x, y in plan.path:
            print(f'  {x:8.3f} {y:8.3f}')
    return 0


def _check_numbers(args: argparse.Namespace) -> None:
    if not 0 <= args.radius < 100:
        raise _Refused(f'--radius must be between 0 and 100 m, got {args.radius}', 2)
    if args.step is not None and not 0 < args.step < 100:
        raise _Refused(f'--step must be between 0 and 100 m, got {args.step}', 2)


def _places(args: argparse.Namespace, zones_path: Path):
    """([start, goal] as map points, the zones if one of them was named by a zone, else None)."""
    from retail_common.store import StoreError
    from retail_navigation.zones import find_zone, load_zones_store

    zones = None
    places = []
    for option, text in (('--from', args.start), ('--to', args.goal)):
        try:
            places.append(_point(text))
            continue
        except argparse.ArgumentTypeError as exc:
            if 'finite' in str(exc):
                raise _Refused(f'{option}: {exc}', 2) from None
        if zones is None:
            try:
                zones = load_zones_store(zones_path)
            except StoreError as exc:
                raise _Refused(f'{option} {text!r} is not X,Y, and no zones to look it up: {exc}', 2) from None
        try:
            places.append(find_zone(zones, text).pose[:2])
        except StoreError as exc:
            raise _Refused(f'{option}: {exc}', 2) from None
    return places, zones


def _draw(png: str, store_map, zones, zones_path: Path, path) -> None:
    """The map, its zones (when readable) and the path into `png`."""
    import cv2

    from retail_common.store import StoreError
    from retail_navigation.map_render import render_map, write_png
    from retail_navigation.zones import load_zones_store
    if zones is None and zones_path.is_file():
        try:
            zones = load_zones_store(zones_path)
        except StoreError as exc:
            print(f'retailbot plan: drawing without zones: {exc}', file=sys.stderr)
    try:
        write_png(png, render_map(store_map, zones, path))
    except (OSError, cv2.error) as exc:
        raise _Refused(f'cannot write --png {png}: {exc}', 1) from None
