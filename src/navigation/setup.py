"""retail_navigation: Kobuki-protocol base driver and simulator, store maps, costmaps, planning and guiding customers."""
from setuptools import find_packages, setup

PACKAGE = 'retail_navigation'

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
    description='Kobuki-protocol base driver and simulator, store maps, costmaps, planning and guiding customers.',
    license='Apache-2.0',
    entry_points={
        # One console script per node: '<exec> = retail_navigation.<module>:main'
        'console_scripts': [
            'retail_navigation_base_driver = retail_navigation.base_driver_node:main',
            'retail_navigation_base_sim = retail_navigation.sim_node:main',
            'retail_navigation_localization = retail_navigation.localization_node:main',
            'retail_navigation_collision_monitor = retail_navigation.collision_monitor_node:main',
            'retail_navigation_guide = retail_navigation.guide_node:main',
        ],
        # Subcommands of the `retailbot` CLI: '<name> = retail_navigation.cli:register'
        'retailbot.commands': [
            'base = retail_navigation.cli:register',
            'plan = retail_navigation.plan_cli:register',
        ],
    },
)
