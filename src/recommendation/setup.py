"""retail_recommendation: Hybrid, explainable product recommendations from purchase history and stated needs."""
from setuptools import find_packages, setup

PACKAGE = 'retail_recommendation'

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
    description='Hybrid, explainable product recommendations from purchase history and stated needs.',
    license='Apache-2.0',
    entry_points={
        # One console script per node: '<exec> = retail_recommendation.<module>:main'
        'console_scripts': ['retail_recommendation_server = retail_recommendation.server_node:main'],
        # Subcommands of the `retailbot` CLI: '<name> = retail_recommendation.cli:register'
        'retailbot.commands': ['recommend = retail_recommendation.cli:register'],
    },
)
