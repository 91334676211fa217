"""Where installed ROS packages keep their shared files and executables.

Works the same on a robot with a full ROS 2 install (colcon's `install/` prefixes on
AMENT_PREFIX_PATH, executables in `lib/<package>/`) and in the pip environment (the venv is the
prefix; console scripts are in the venv's `bin/`, found through the package's entry points).
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path

INDEX = Path('share', 'ament_index', 'resource_index', 'packages')


def prefixes() -> list[Path]:
    """Install prefixes to search, most specific first."""
    found = [Path(p) for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    venv = Path(sys.prefix)
    if venv not in found:
        found.append(venv)
    return found


def find_package_prefix(package: str) -> Path:
    for prefix in prefixes():
        if (prefix / INDEX / package).exists():
            return prefix
    raise LookupError(f'package {package!r} is not installed (searched {", ".join(map(str, prefixes()))})')


def find_package_share(package: str) -> str:
    return str(find_package_prefix(package) / 'share' / package)


def _console_scripts(package: str) -> dict[str, str]:
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return {}
    return {ep.name: ep.value for ep in dist.entry_points if ep.group == 'console_scripts'}


def find_executable(package: str, executable: str) -> list[str]:
    """The command that starts `executable` of `package` (as `ros2 run package executable`)."""
    for prefix in prefixes():
        candidate = prefix / 'lib' / package / executable
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
    scripts = _console_scripts(package)
    if executable in scripts:
        script = Path(sys.prefix) / 'bin' / executable
        if script.is_file():
            return [str(script)]
        module, _, attr = scripts[executable].partition(':')
        return [sys.executable, '-c', f'import sys; from {module} import {attr} as m; sys.exit(m())']
    if not scripts:
        find_package_prefix(package)  # raises "not installed" when that is the problem
    known = ', '.join(sorted(scripts)) or 'none'
    raise LookupError(f'package {package!r} has no executable {executable!r} (it has: {known})')
