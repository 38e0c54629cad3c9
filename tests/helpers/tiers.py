"""The test tiers, given to each test by where it lives (tests/conftest.py adds the marker): tests/browser/ and
tests/app/ are their own tiers; the modules of :data:`PROCESS_MODULES` start processes (job workers, the CLI as a
real command, bench scripts, concurrent writers) or wait on them; everything else is a unit test. `make test-fast`
runs unit and app. A test may say its own tier (``@pytest.mark.process`` on the one test of a unit module that
starts workers); the marker it says is kept."""

from pathlib import Path

TIERS = ("unit", "process", "app", "browser")
TIER_DIRS = {"browser": "browser", "app": "app"}
PROCESS_MODULES = {
    "test_bench.py",
    "classroom/test_two_servers_class.py",
    "test_cli_processes.py",
    "test_cli_landscape.py",
    "test_export.py",
    "test_install_script.py",
    "downloads/test_download_processes.py",
    "experiments/test_experiments_landscape.py",
    "experiments/test_experiments_landscape_path.py",
    "experiments/test_speed_processes.py",
    "jobs/test_jobs_faults.py",
    "jobs/test_jobs_groups.py",
    "jobs/test_jobs_processes.py",
    "jobs/test_jobs_reap.py",
    "jobs/test_ray_cluster.py",
    "jobs/test_jobs_hosts.py",
    "jobs/test_resume_failed_processes.py",
    "store/test_store_concurrency.py",
    "store/test_store_postgres_processes.py",
    "store/test_store_postgres_reconnect.py",
    "train/test_cuda.py",
    "train/test_ddp.py",
    "train/test_processes.py",
    "train/test_reproducibility_processes.py",
}
TESTS = Path(__file__).resolve().parents[1]


def tier_of(path: Path) -> str:
    """The tier of the test module at ``path``: browser, app, process or unit."""
    rel = Path(path).resolve().relative_to(TESTS)
    if rel.parts[0] in TIER_DIRS:
        return TIER_DIRS[rel.parts[0]]
    return "process" if rel.as_posix() in PROCESS_MODULES else "unit"
