"""retail_bringup: The retailbot CLI, the YAML launch-file launcher, node support (validated parameters) and the simulated store."""
from setuptools import find_packages, setup

PACKAGE = 'retail_bringup'

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
    description='The retailbot CLI, the YAML launch-file launcher, node support (validated parameters) and the simulated store.',
    license='Apache-2.0',
    entry_points={
        # One console script per node: '<exec> = retail_bringup.<module>:main'
        'console_scripts': [],
        # Subcommands of the `retailbot` CLI: '<name> = retail_bringup.cli:register'
        'retailbot.commands': [],
    },
)
