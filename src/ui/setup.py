"""retail_ui: the robot's touch screen and the staff console, served by one node (/ui/server)."""
import os

from setuptools import find_packages, setup

PACKAGE = 'retail_ui'
STATIC = os.path.join(PACKAGE, 'static')

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    package_data={PACKAGE: [os.path.relpath(os.path.join(d, f), PACKAGE)
                            for d, _, files in os.walk(STATIC) for f in files]},
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + PACKAGE]),
        ('share/' + PACKAGE, ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    description="The robot's touch screen (/) and the staff console (/console), live from the ROS graph.",
    license='Apache-2.0',
    entry_points={
        'console_scripts': [
            'retail_ui_server = retail_ui.server_node:main',
            'retail_ui_staff_password = retail_ui.auth:password_main',
        ],
    },
)
