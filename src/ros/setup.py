"""retail_ros: the ROS 2 shims in one place (launch interpreter, rcl params reader, executor, node support, TF, QoS)."""

from setuptools import find_packages, setup

PACKAGE = 'retail_ros'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
        ('share/' + PACKAGE, ['README.md']),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    description='The ROS 2 shims in one place: launch interpreter, rcl params reader, executor, node support, TF, QoS.',
    license='Apache-2.0',
)
