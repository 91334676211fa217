"""retail_common: the domain every package builds on (store model, event contracts, intents, names; no rclpy)."""

from setuptools import find_packages, setup

PACKAGE = 'retail_common'

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
    description='The domain every package builds on: store model, event contracts, intents, topic names (no rclpy).',
    license='Apache-2.0',
)
