"""The cluster's parts that need no process: HAProxy's configuration, the settings' limits, the record of a
running cluster, and the command's refusals. tests/e2e/test_cluster.py starts a real one."""

from __future__ import annotations

import dataclasses
import os
import re
import socket

import pytest

from digitdraw.cli import main
from digitdraw.deploy import cluster, network, proxy
from digitdraw.serving.saved_models import process_stat


def test_haproxy_keeps_each_browser_on_one_replica_and_moves_it_when_that_one_fails():
    config = proxy.haproxy_config("0.0.0.0", 8080, [9001, 9002])
    assert "bind 0.0.0.0:8080" in config
    # A cookie naming the replica, set on the first response and sent back with the WebSocket.
    assert f"cookie {proxy.REPLICA_COOKIE} insert indirect nocache" in config
    servers = re.findall(r"server (app\d) 127\.0\.0\.1:(\d+) cookie (app\d) check", config)
    assert servers == [("app1", "9001", "app1"), ("app2", "9002", "app2")]
    assert f"option httpchk GET {proxy.HEALTH_PATH}" in config and "option redispatch" in config
    assert "timeout tunnel" in config, "an idle WebSocket stays open for a lesson"
    assert "noreuseport" in config, "a second proxy on the port fails rather than share it"


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
        ({"host": "127.0.0.1:80\n    bind 0.0.0.0"}, "the host must be an IP address"),
        ({"host": "localhost"}, "the host must be an IP address"),
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
            cluster.Process(cluster.Role.REPLICA, "app1", 101, "app1.log", started=5, port=9001),
            cluster.Process(cluster.Role.WORKER, "worker1", 102, "worker1.log", started=6),
        ),
    )
    record.save(tmp_path)
    assert cluster.Cluster.load(tmp_path) == record
    assert (tmp_path / cluster.STATE_FILE).stat().st_mode & 0o077 == 0, "it holds the database's password"
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


def test_a_recorded_process_id_that_another_program_took_is_not_that_process(tmp_path):
    # After a reboot, or long after a crash, the recorded id may name another program: with its start
    # time and the machine's boot id, stop() leaves it alone.
    own = os.getpid()
    started = int(process_stat(own)[19])
    assert cluster.Process(cluster.Role.WORKER, "worker1", own, "w.log", started=started).alive()
    assert not cluster.Process(cluster.Role.WORKER, "worker1", own, "w.log", started=started + 1).alive()
    record = cluster.Cluster(
        url="", database_url="", models="", postgres_folder=str(tmp_path),
        processes=(cluster.Process(cluster.Role.WORKER, "worker1", own, "w.log", started=started),),
    )  # fmt: skip
    assert record.running() == list(record.processes)
    assert dataclasses.replace(record, boot_id="another boot").running() == []


def test_haproxy_binds_an_ipv6_address_and_the_browser_url_brackets_it():
    assert "bind :::8080" in proxy.haproxy_config("::", 8080, [9001])
    assert network.url_of("::1", 8080) == "http://[::1]:8080"
    assert network.url_of("0.0.0.0", 8080) == "http://127.0.0.1:8080"


def test_a_cluster_is_not_started_on_a_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert not network.port_is_free("127.0.0.1", port)
        with pytest.raises(ValueError, match=f"port {port} is in use"):
            cluster.start(cluster.ClusterSettings(folder=tmp_path, port=port))
    assert not (tmp_path / cluster.STATE_FILE).exists(), "nothing started, nothing recorded"
