"""Which tier provides the tests' broker and database, and what each gives: pure logic
(the environment and the Docker probe are stand-ins; no server is contacted)."""

import pytest

from platen.testing import infra
from platen.testing.infra import InfraError, choose_tier, infra_from_env

URLS = {
    "PLATEN_TEST_AMQP_URL": "amqp://admin:pw@broker.example:5672/",
    "PLATEN_TEST_DATABASE_URL": "postgresql://postgres@db.example/postgres",
}


def docker(answers: bool):
    calls = []

    def probe() -> bool:
        calls.append(1)
        return answers

    probe.calls = calls
    return probe


def test_the_environment_comes_first_and_docker_is_not_even_asked():
    probe = docker(True)
    assert choose_tier(URLS, probe) is infra._from_env
    assert probe.calls == []


def test_containers_when_docker_answers_and_nothing_is_set():
    assert choose_tier({}, docker(True)) is infra._from_containers


def test_local_binaries_when_docker_does_not_answer():
    assert choose_tier({}, docker(False)) is infra._from_local


def test_half_an_environment_is_an_error_not_a_fall_through():
    only_amqp = {"PLATEN_TEST_AMQP_URL": URLS["PLATEN_TEST_AMQP_URL"]}
    assert choose_tier(only_amqp, docker(True)) is infra._from_env
    with pytest.raises(InfraError, match="set PLATEN_TEST_DATABASE_URL too"):
        infra_from_env(only_amqp)


def test_the_environment_tier_without_extras_fails_naming_what_to_set():
    got = infra_from_env(URLS)
    # Somebody else's servers: every test's database and vhost is removed after it.
    assert not got.throwaway
    assert got.management_url == "http://broker.example:15672"
    with pytest.raises(InfraError, match="PLATEN_TEST_AMQPS_URL"):
        got.tls_url()
    with pytest.raises(InfraError, match="PLATEN_TEST_BROKER_LOG"):
        got.broker_log()
    with pytest.raises(InfraError, match="PLATEN_TEST_BROKER_RESTART_COMMAND"):
        got.restart()


def test_the_environment_tier_provides_tls_log_and_restart_when_set(tmp_path):
    log = tmp_path / "rabbit.log"
    log.write_text("connection refused for user 'mallory'\n")
    marker = tmp_path / "restarted"
    env = {
        **URLS,
        "PLATEN_TEST_AMQPS_URL": "amqps://admin:pw@broker.example:5671/?cafile=/ca.pem",
        "PLATEN_TEST_BROKER_LOG": str(log),
        "PLATEN_TEST_BROKER_RESTART_COMMAND": f"touch {marker}",
    }
    got = infra_from_env(env)
    assert got.tls_url() == env["PLATEN_TEST_AMQPS_URL"]
    assert "user 'mallory'" in got.broker_log()
    got.restart()
    assert marker.exists()


def test_the_broker_log_may_come_from_a_command_and_a_failing_command_says_so():
    env = {
        **URLS,
        "PLATEN_TEST_BROKER_LOG_COMMAND": "echo from the broker",
        "PLATEN_TEST_BROKER_RESTART_COMMAND": "exit 3",
    }
    got = infra_from_env(env)
    assert got.broker_log() == "from the broker\n"
    with pytest.raises(InfraError, match="exited 3"):
        got.restart()
