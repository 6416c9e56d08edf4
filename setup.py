"""nni-gensynth: generative synthesis of efficient networks as an NNI 3.0 tuner and NAS strategy.

The shipped hardware profiles (hw_profiles/*.yml) and search spaces (search_spaces/*.json) live at
the top of the repository; a build copies them into the package (nni_gensynth/shipped/), so an
installed wheel finds `hw_profile: host-cpu` from any folder. An editable install reads them from
the repository itself.
"""
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
SHIPPED = {"hw_profiles": "*.yml", "search_spaces": "*.json"}


class BuildWithShippedData(build_py):
    """build_py that also copies the shipped profiles and search spaces into the package."""

    def run(self) -> None:
        super().run()
        for folder, pattern in SHIPPED.items():
            target = Path(self.build_lib, "nni_gensynth", "shipped", folder)
            target.mkdir(parents=True, exist_ok=True)
            for source in sorted((HERE / folder).glob(pattern)):
                self.copy_file(str(source), str(target / source.name))


setup(
    name="nni-gensynth",
    version="0.1.0",
    description="GenSynth (generative synthesis) for NNI: networks that meet measured latency/energy/memory "
                "requirements on edge devices.",
    packages=find_packages(include=["nni_gensynth", "nni_gensynth.*"]),
    package_data={"nni_gensynth": ["nni_meta.yml"]},
    cmdclass={"build_py": BuildWithShippedData},
    python_requires=">=3.9",
    # What the engine (numpy, scipy, threadpoolctl), the hardware profiles (PyYAML) and the device
    # runner (numpy; psutil for memory and CPU time) import.
    install_requires=["numpy", "scipy", "threadpoolctl", "PyYAML", "psutil"],
    extras_require={
        "nni": ["nni==3.0", "setuptools<81"],
        "torch": ["torch>=2.2", "onnx", "onnxruntime", "scikit-learn", "tqdm", "Pillow"],
        "tflite": ["ai-edge-litert", "litert-torch"],
        "ssh": ["paramiko"],
        "adb": ["adbutils"],
        "report": ["matplotlib"],
        "all": ["nni==3.0", "setuptools<81", "torch>=2.2", "onnx", "onnxruntime", "scikit-learn", "tqdm", "Pillow",
                "ai-edge-litert", "litert-torch", "paramiko", "adbutils", "matplotlib"],
    },
    entry_points={"console_scripts": ["gensynth=nni_gensynth.cli:main"]},
)
