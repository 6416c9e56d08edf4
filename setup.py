"""nni-gensynth: generative synthesis of efficient networks as an NNI 3.0 tuner."""
from setuptools import find_packages, setup

setup(
    name="nni-gensynth",
    version="0.1.0",
    description="GenSynth (generative synthesis) as an NNI tuner: networks that meet measured "
                "latency/energy/memory requirements on edge devices.",
    packages=find_packages(include=["nni_gensynth", "nni_gensynth.*"]),
    package_data={"nni_gensynth": ["data/*.json", "data/*.yml", "data/**/*"]},
    python_requires=">=3.9",
    # The device runner (python -m nni_gensynth.device) needs only these.
    install_requires=["numpy", "psutil", "PyYAML"],
    extras_require={
        "nni": ["nni==3.0", "setuptools<81"],
        "torch": ["torch>=2.2", "onnx", "onnxruntime", "scikit-learn", "tqdm"],
        "tflite": ["ai-edge-litert", "litert-torch"],
        "ssh": ["paramiko"],
        "adb": ["adbutils"],
        "report": ["matplotlib"],
        "all": ["nni==3.0", "setuptools<81", "torch>=2.2", "onnx", "onnxruntime", "scikit-learn",
                "tqdm", "ai-edge-litert", "litert-torch", "paramiko", "adbutils", "matplotlib"],
    },
    entry_points={"console_scripts": ["gensynth=nni_gensynth.cli:main"]},
)
