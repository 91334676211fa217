"""retail_dialogue: Speech in (Vosk), catalog-driven bilingual understanding, dialogue management and speech out (espeak-ng)."""
from setuptools import find_packages, setup

PACKAGE = 'retail_dialogue'

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
    description='Speech in (Vosk), catalog-driven bilingual understanding, dialogue management and speech out (espeak-ng).',
    license='Apache-2.0',
    entry_points={
        # One console script per node: '<exec> = retail_dialogue.<module>:main'
        'console_scripts': [
            'retail_dialogue_asr = retail_dialogue.asr_node:main',
            'retail_dialogue_tts = retail_dialogue.tts_node:main',
            'retail_dialogue_manager = retail_dialogue.manager_node:main',
        ],
        # Subcommands of the `retailbot` CLI: '<name> = retail_dialogue.cli:register'
        'retailbot.commands': [
            'nlu = retail_dialogue.cli:register',
            'asr = retail_dialogue.asr_cli:register',
        ],
    },
)
