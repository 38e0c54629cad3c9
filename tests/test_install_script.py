"""scripts/install.sh, the one door `make` installs packages through: where uv cannot be had (here: pip may use no
index but a folder of wheels without uv), pip installs the requirement files itself, from the same places."""

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tiny_wheel(folder: Path, name: str = "lab_install_probe", version: str = "1.0") -> Path:
    """A genuine pure-Python wheel (PEP 427): one module whose VALUE is 42, with its metadata and RECORD."""
    dist = f"{name}-{version}.dist-info"
    files = {f"{name}.py": b"VALUE = 42\n",
             f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}

    def digest(data: bytes) -> str:
        return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    record = "".join(f"{path},{digest(data)},{len(data)}\n" for path, data in files.items()) + f"{dist}/RECORD,,\n"
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for p, data in {**files, f"{dist}/RECORD": record.encode()}.items():
            z.writestr(p, data)
    return path


def test_without_uv_pip_installs_the_requirements_from_the_configured_places_or_fails(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    tiny_wheel(wheels)
    req = tmp_path / "requirements.txt"
    req.write_text("lab_install_probe==1.0\n")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels),
           "PIP_CONFIG_FILE": "/dev/null", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    r = subprocess.run(["sh", str(ROOT / "scripts" / "install.sh"), str(py), str(req)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (venv / "bin" / "uv").exists()  # no uv in a folder of wheels without it: pip did the work
    out = subprocess.run([str(py), "-c", "import lab_install_probe as m; print(m.VALUE)"], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "42"

    req.write_text("lab_install_probe==2.0\n")  # nowhere to be found: the install fails, and make stops there
    r = subprocess.run(["sh", str(ROOT / "scripts" / "install.sh"), str(py), str(req)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "lab_install_probe==2.0" in r.stdout + r.stderr

