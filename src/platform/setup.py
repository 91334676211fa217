"""retail_platform: the chain's online platform (events ingest, per-store downlink, tokens)."""
from setuptools import find_packages, setup

PACKAGE = 'retail_platform'

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
    description='The chain platform: events ingest on PostgreSQL or SQLite, per-store downlink, '
                'robot and staff credentials.',
    license='Apache-2.0',
    entry_points={
        # Subcommands of the `retailbot` CLI: '<name> = retail_platform.cli:register'
        'retailbot.commands': ['platform = retail_platform.cli:register'],
    },
)
