"""retail_perception: Camera capture, face detection/tracking/recognition of consenting members and VIPs, customer events."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'retail_perception'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE + '/sim_camera', sorted(glob('sim_camera/*'))),   # the simulated camera's replay
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    description='Camera capture, face detection/tracking/recognition of consenting members and VIPs, customer events.',
    license='Apache-2.0',
    entry_points={
        # One console script per node: '<exec> = retail_perception.<module>:main'
        'console_scripts': [
            'retail_perception_camera = retail_perception.camera_node:main',
            'retail_perception_faces = retail_perception.faces_node:main',
        ],
        # Subcommands of the `retailbot` CLI: '<name> = retail_perception.cli:register'
        'retailbot.commands': ['retail_perception_faces = retail_perception.cli:register'],
    },
)
