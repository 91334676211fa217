"""retail_common: the bottom layer every package builds on (store model, parameter specs, node support, executor, CLI output helpers)."""
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
    description='The bottom layer every package builds on: store model, parameter specs, node support, executor, CLI output helpers.',
    license='Apache-2.0',
)
