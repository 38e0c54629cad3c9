"""Schema 7: measured model speeds kept per device name and preset, on SQLite and PostgreSQL; a schema-6 lab home
gains the table in place, its jobs intact."""

import math

import pytest

from resnet_lab.store import SCHEMA_VERSION, Speed, Store


def speed(preset="resnet20", name="CPU: Test 9000 (2 cores)", train=100.0, **kw) -> Speed:
    return Speed(preset=preset, device=kw.pop("device", "cpu"), device_name=name, train_images_per_s=train,
                 latency_ms=kw.pop("latency_ms", 4.5), images_per_s=kw.pop("images_per_s", 900.0), batch=64,
                 measured_at=kw.pop("measured_at", 1000.0), image_size=32, **kw)


def test_speeds_are_kept_per_device_and_a_new_measurement_replaces_the_old(store_location):
    s = Store(store_location)
    s.model_speeds.record(speed("resnet20", train=100.0, job_id=3, detail={"train_steps": 5}))
    s.model_speeds.record(speed("plain20", train=90.0))
    s.model_speeds.record(speed("resnet20", name="NVIDIA H100 80GB HBM3", device="cuda", train=50_000.0))
    cpu = s.model_speeds.of_device("CPU: Test 9000 (2 cores)")
    assert sorted(cpu) == ["plain20", "resnet20"] and cpu["resnet20"].train_images_per_s == 100.0
    assert cpu["resnet20"].job_id == 3 and cpu["resnet20"].detail == {"train_steps": 5}
    assert s.model_speeds.of_device("NVIDIA H100 80GB HBM3")["resnet20"].train_images_per_s == 50_000.0
    assert s.model_speeds.devices() == {"CPU: Test 9000 (2 cores)": "cpu", "NVIDIA H100 80GB HBM3": "cuda"}
    s.model_speeds.record(speed("resnet20", train=120.0, measured_at=2000.0))
    again = s.model_speeds.of_device("CPU: Test 9000 (2 cores)")["resnet20"]
    assert (again.train_images_per_s, again.measured_at, again.job_id) == (120.0, 2000.0, None)
    assert s.model_speeds.of_device("nowhere") == {}
    assert s.model_speeds.forget("CPU: Test 9000 (2 cores)", ["plain20"]) == 1
    assert sorted(s.model_speeds.of_device("CPU: Test 9000 (2 cores)")) == ["resnet20"]
    s.close()


@pytest.mark.parametrize("bad, match", [
    (dict(train=0.0), "train_images_per_s must be a positive finite"),
    (dict(latency_ms=math.nan), "latency_ms must be a positive finite"),
    (dict(images_per_s=math.inf), "images_per_s must be a positive finite"),
    (dict(device="tpu"), "device is 'cpu' or 'cuda'"),
    (dict(name=""), "needs its preset and its device's name"),
])
def test_a_speed_that_is_not_a_measurement_is_refused(lab_home, bad, match):
    s = Store()
    with pytest.raises(ValueError, match=match):
        s.model_speeds.record(speed(**bad))
    assert s.model_speeds.devices() == {}
    s.close()


def as_schema_6(s: Store) -> None:
    """Put the store's database back in the schema-6 layout: no speeds table, version 6 (on either engine)."""
    con = s.db.con
    con.execute("DROP TABLE model_speeds")
    if s.db.dialect == "sqlite":
        con.execute("PRAGMA user_version=6")
    else:
        con.execute("UPDATE lab_schema SET version=6")


def version(s: Store) -> int:
    query = "PRAGMA user_version" if s.db.dialect == "sqlite" else "SELECT version FROM lab_schema"
    return int(s.db.con.execute(query).fetchone()[0])


def test_a_schema_6_lab_gains_the_speeds_table_in_place_and_keeps_its_records(store_location):
    s = Store(store_location)
    job, _ = s.jobs.create("landscape", "l", "cpu", params={"points": 3})
    s.people.create("Ann", "hash-ann")
    as_schema_6(s)
    s.close()
    s = Store(store_location)
    assert version(s) == SCHEMA_VERSION == 7
    assert s.jobs.get(job).params == {"points": 3} and [p.name for p in s.people.list()] == ["Ann"]
    s.model_speeds.record(speed(measured_at=1796640913.2271287))  # a timestamp keeps its fraction (no REAL4)
    assert s.model_speeds.of_device("CPU: Test 9000 (2 cores)")["resnet20"].measured_at == 1796640913.2271287
    s.close()
