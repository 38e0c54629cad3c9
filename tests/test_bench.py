import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_trainer_overhead_bench_runs_and_prints_a_ratio():
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "trainer_overhead.py"), "--size", "16", "--batch", "8",
                        "--warmup", "10", "--steps", "10", "--repeats", "1", "--device", "cpu"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    ratio = float(r.stdout.split("ratio lab/bare = ")[1].split()[0])
    assert 0 < ratio < 10
