"""retail_bringup: The retailbot CLI, the YAML launch-file launcher, the health node, launch files and config (it composes the robot)."""
import os

from setuptools import find_packages, setup

PACKAGE = 'retail_bringup'
REPO = os.path.join('..', '..')


def repo_tree(folder):
    """(share destination, files) pairs for a top-level folder, so colcon installs launch/ and config/."""
    pairs = []
    for directory, _, files in os.walk(os.path.join(REPO, folder)):
        if files and '__pycache__' not in directory:
            destination = os.path.join('share', PACKAGE, os.path.relpath(directory, REPO))
            pairs.append((destination, [os.path.join(directory, f) for f in sorted(files)]))
    return pairs


setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
    ] + repo_tree('launch') + repo_tree('config'),
    install_requires=['setuptools'],
    zip_safe=False,
    description='The retailbot CLI, the YAML launch-file launcher, the health node, launch files and config (it composes the robot).',
    license='Apache-2.0',
    entry_points={
        # One console script per node: '<exec> = retail_bringup.<module>:main'
        'console_scripts': [
            'retailbot = retail_bringup.cli:main',
            'retail_bringup_health = retail_bringup.health_node:main',
        ],
        'retailbot.commands': ['doctor = retail_bringup.doctor:register'],
    },
)
