"""The cluster's parts that need no process: HAProxy's configuration, the settings' limits, the record of a
running cluster, and the command's refusals. tests/e2e/test_cluster.py starts a real one."""

from __future__ import annotations

import re

import pytest

from digitdraw.cli import main
from digitdraw.deploy import cluster, proxy


def test_haproxy_keeps_each_browser_on_one_replica_and_moves_it_when_that_one_fails():
    config = proxy.haproxy_config("0.0.0.0", 8080, [9001, 9002])
    assert "bind 0.0.0.0:8080" in config
    # A cookie naming the replica, set on the first response and sent back with the WebSocket.
    assert f"cookie {proxy.REPLICA_COOKIE} insert indirect nocache" in config
    servers = re.findall(r"server (app\d) 127\.0\.0\.1:(\d+) cookie (app\d) check", config)
    assert servers == [("app1", "9001", "app1"), ("app2", "9002", "app2")]
    assert f"option httpchk GET {proxy.HEALTH_PATH}" in config and "option redispatch" in config
    assert "timeout tunnel" in config, "an idle WebSocket stays open for a lesson"


def test_a_proxy_needs_a_replica():
    with pytest.raises(ValueError, match="at least one replica"):
        proxy.haproxy_config("127.0.0.1", 8080, [])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"replicas": 0}, "replicas must be 1 to 16"),
        ({"replicas": 17}, "replicas must be 1 to 16"),
        ({"workers": -1}, "workers must be 0 to 16"),
        ({"port": 70000}, "the port must be 1 to 65535"),
    ],
)
def test_cluster_settings_out_of_bounds_are_refused_in_one_sentence(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        cluster.ClusterSettings(folder=tmp_path, **changes)


def test_a_running_cluster_is_recorded_and_read_back(tmp_path):
    record = cluster.Cluster(
        url="http://127.0.0.1:8080",
        database_url="postgresql+psycopg://digitdraw@127.0.0.1:5432/digitdraw",
        models=str(tmp_path / "models"),
        postgres_folder=str(tmp_path / "postgres"),
        processes=(
            cluster.Process(cluster.Role.REPLICA, "app1", 101, "app1.log", 9001),
            cluster.Process(cluster.Role.WORKER, "worker1", 102, "worker1.log"),
        ),
    )
    record.save(tmp_path)
    assert cluster.Cluster.load(tmp_path) == record
    assert [process.name for process in record.of_role(cluster.Role.WORKER)] == ["worker1"]
    assert cluster.Cluster.load(tmp_path / "elsewhere") is None


def test_the_command_refuses_a_bad_request_and_stops_nothing_it_did_not_start(tmp_path, capsys):
    assert main(["cluster", "start", "--folder", str(tmp_path), "--replicas", "0"]) == 2
    assert capsys.readouterr().err.strip() == (
        "python -m digitdraw cluster start: replicas must be 1 to 16, not 0"
    )
    assert not (tmp_path / cluster.STATE_FILE).exists()
    assert main(["cluster", "stop", "--folder", str(tmp_path)]) == 0
    assert "No cluster was started from" in capsys.readouterr().out
