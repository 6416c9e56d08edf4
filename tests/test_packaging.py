"""Packaging matches the code: a wheel installed into a new venv works from another folder.

The wheel is built from this checkout, installed without dependencies into a fresh venv that
borrows this venv's third-party packages through a .pth file (a .pth in a borrowed folder is not
run, so this checkout's editable install stays out of it), and used from an empty folder: the
shipped profiles and search spaces are found, and `gensynth profile --profile host-tflite` measures.
"""
from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path, env: dict = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


def test_an_installed_wheel_finds_its_profiles_and_measures_from_any_folder(tmp_path):
    out = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"),
              str(REPO), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("nni_gensynth-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("nni_gensynth/shipped/hw_profiles/host-cpu.yml", "nni_gensynth/shipped/hw_profiles/host-tflite.yml",
                    "nni_gensynth/shipped/search_spaces/mobilenetv2_prototype.json", "nni_gensynth/nni_meta.yml",
                    "nni_gensynth/evaluator/spec.py", "nni_gensynth/device/__main__.py"):
        assert shipped in names, shipped
    metadata = next(n for n in names if n.endswith("METADATA"))
    requires = [line for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
                if line.startswith("Requires-Dist:") and "extra ==" not in line]
    for engine_import in ("numpy", "scipy", "threadpoolctl", "PyYAML"):
        assert any(engine_import in line for line in requires), (engine_import, requires)

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                    cwd=tmp_path).stdout.strip())
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    out = run(sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", str(wheel), cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "GENSYNTH_CACHE_DIR": str(tmp_path / "cache")}
    probe = ("import json, nni_gensynth; from nni_gensynth import GenSynthTuner; "
             "from nni_gensynth.hardware import load_profile; "
             "t = GenSynthTuner(hw_profile='host-cpu'); "
             "print(json.dumps([nni_gensynth.__file__, load_profile('host-tflite').name, t._profiler_fn.spec.builder]))")
    out = run(str(python), "-c", probe, cwd=elsewhere, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    location, profile, builder = json.loads(out.stdout.strip().splitlines()[-1])
    assert location.startswith(str(env_dir)) and profile == "host-tflite" and builder == "macro_mobilenet"

    model = elsewhere / "tiny.json"
    model.write_text(json.dumps({"stem_width": 8, "stage1_depth": 1, "stage1_width": 8, "stage1_kernel": 3,
                                 "stage1_expansion": 1, "stage2_depth": 0, "stage2_width": 16, "stage2_kernel": 3,
                                 "stage2_expansion": 1, "stage3_depth": 0, "stage3_width": 24, "stage3_kernel": 3,
                                 "stage3_expansion": 1, "stage4_depth": 0, "stage4_width": 32, "stage4_kernel": 3,
                                 "stage4_expansion": 1}))
    out = run(str(env_dir / "bin" / "gensynth"), "profile", str(model), "--profile", "host-tflite",
              "--input-shape", "1,1,16,16", "--json", cwd=elsewhere, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    measured = json.loads(out.stdout.strip().splitlines()[-1])
    assert measured["backend"] == "litert" and measured["latency_ms"] > 0
