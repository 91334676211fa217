"""Regenerate the demo store's map.yaml + map.pgm from its floor plan (retail_navigation.demo_store).

    .venv/bin/python config/stores/demo/make_map.py [--png preview.png]
"""
from __future__ import annotations

import argparse
from pathlib import Path

from retail_navigation.demo_store import demo_store_map
from retail_navigation.maps import save_map

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--png', help='also draw the map with its zones into this PNG')
    args = parser.parse_args()
    store_map = demo_store_map(0.05)
    save_map(store_map, HERE / 'map.yaml', 'map.pgm')
    print(f'wrote {HERE / "map.yaml"} ({store_map.width} x {store_map.height} cells)')
    if args.png:
        from retail_navigation.map_render import render_map, write_png
        from retail_navigation.zones import load_zones_store
        write_png(args.png, render_map(store_map, load_zones_store(HERE / 'zones.yaml')))
        print(f'wrote {args.png}')


if __name__ == '__main__':
    main()
