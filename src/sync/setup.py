"""retail_sync: Store-and-forward outbox, uploader and downlink to the online platform."""
from setuptools import find_packages, setup

PACKAGE = 'retail_sync'

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
    description='Store-and-forward outbox, uploader and downlink to the online platform.',
    license='Apache-2.0',
    entry_points={
        # One console script per node: '<exec> = retail_sync.<module>:main'
        'console_scripts': ['retail_sync_agent = retail_sync.agent_node:main'],
        # Subcommands of the `retailbot` CLI: '<name> = retail_sync.cli:register'
        'retailbot.commands': ['sync = retail_sync.cli:register'],
    },
)
