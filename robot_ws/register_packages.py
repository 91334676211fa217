"""Register the editable src/* packages in the venv's ament index, as colcon would install them.

`pip install -e` does not install data files, so `$(find-pkg-share retail_bringup)` and
ament_index lookups would not find our packages. This writes the index markers and links each
package's share folder to the sources: retail_bringup's share holds the repository's `launch/`
and `config/`, like `colcon build` installs them.
"""
from __future__ import annotations

import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIX = Path(sys.prefix)
SOURCE_FOLDERS = {'resource', 'scripts', 'test', '__pycache__'}
INDEX = PREFIX / 'share' / 'ament_index' / 'resource_index' / 'packages'


def _link(link: Path, target: Path) -> None:
    if link.is_symlink() and link.resolve() == target.resolve():
        return
    if link.is_dir() and not link.is_symlink():
        shutil.rmtree(link)  # a copy left by a non-editable install
    elif link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


def main() -> None:
    INDEX.mkdir(parents=True, exist_ok=True)
    for package_xml in sorted(ROOT.glob('src/*/package.xml')):
        name = ET.parse(package_xml).getroot().findtext('name')
        if (package_xml.parent / 'CMakeLists.txt').exists():
            continue  # retail_interfaces: installed for real by its pip build
        (INDEX / name).write_text('')
        share = PREFIX / 'share' / name
        share.mkdir(parents=True, exist_ok=True)
        _link(share / 'package.xml', package_xml)
        if name == 'retail_bringup':
            _link(share / 'launch', ROOT / 'launch')
            _link(share / 'config', ROOT / 'config')
        for data in sorted(package_xml.parent.iterdir()):   # data folders setup.py installs into share
            if data.is_dir() and data.name not in SOURCE_FOLDERS | {name} and not data.name.endswith('.egg-info'):
                _link(share / data.name, data)
        print(f'[install] registered {name} -> {share}')


if __name__ == '__main__':
    main()
