"""environment.yml and docker-compose.yml parse and agree with the package."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

from eventml.kafka import KAFKA_VERSION, MIN_JAVA

ROOT = Path(__file__).resolve().parents[1]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_has_python_a_jdk_maven_and_installs_eventml_with_its_extras():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    python = next(d for d in conda if d.startswith("python="))
    assert python.split("=")[1] == pyproject()["project"]["requires-python"].removeprefix(">=")
    jdk = next(d for d in conda if d.startswith("openjdk"))
    assert int(jdk.split("=")[1]) >= MIN_JAVA
    assert "maven" in conda
    (install,) = pip
    assert install.startswith("-e .[")
    extras = install.split("[")[1].rstrip("]").split(",")
    assert set(extras) <= set(pyproject()["project"]["optional-dependencies"])


def test_compose_runs_the_same_kafka_version_in_kraft_mode_on_9092():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    kafka = compose["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert "127.0.0.1:9092:9092" in kafka["ports"]  # published on this machine only
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_compose_jupyter_installs_eventml_and_points_it_at_the_kafka_service():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    kafka_env = compose["services"]["kafka"]["environment"]
    jupyter = compose["services"]["jupyter"]
    servers = jupyter["environment"]["EVENTML_BOOTSTRAP_SERVERS"]
    assert servers in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    assert "pip install" in jupyter["command"] and ".[dev,lab]" in jupyter["command"]
    assert jupyter["ports"] == ["127.0.0.1:8888:8888"]  # JupyterLab on this machine only
    python_tag = jupyter["image"].split(":")[1].split("-")[0]
    assert python_tag == pyproject()["project"]["requires-python"].removeprefix(">=")

