"""retail_demo: the simulated store day (`retailbot demo`), a client of the robot with its own assets."""

import os

from setuptools import find_packages, setup

PACKAGE = 'retail_demo'
ASSETS = os.path.join(PACKAGE, 'assets')

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    package_data={
        PACKAGE: [os.path.relpath(os.path.join(d, f), PACKAGE) for d, _, files in os.walk(ASSETS) for f in files]
    },
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    description='The simulated store day (retailbot demo), a client of the robot with its own assets.',
    license='Apache-2.0',
    entry_points={
        # Subcommands of the `retailbot` CLI: '<name> = retail_demo.demo:register'
        'retailbot.commands': ['demo = retail_demo.demo:register'],
    },
)
