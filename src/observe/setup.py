"""retail_observe: see the robot with the field's tools (Foxglove WebSocket server) and record/replay it (MCAP)."""

from setuptools import find_packages, setup

PACKAGE = 'retail_observe'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    description='Foxglove WebSocket server on the robot; MCAP record and replay of the ROS graph.',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'retail_observe_foxglove = retail_observe.foxglove_node:main',
            'retail_observe_incidents = retail_observe.incident_node:main',
        ],
        # Subcommands of the `retailbot` CLI: '<name> = module:register'
        'retailbot.commands': [
            'record = retail_observe.cli:register_record',
            'replay = retail_observe.cli:register_replay',
        ],
    },
)
