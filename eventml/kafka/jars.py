"""The Apache Kafka jars and the JDK that runs them, for the local broker.

The first start of a local broker resolves ``org.apache.kafka:kafka_2.13`` (pinned to
:data:`KAFKA_VERSION`) and its dependencies with Maven into a cache (``~/.cache/eventml`` or
``$EVENTML_CACHE_DIR``), once; the broker runs on the local JDK (17+). Each missing tool is a
one-sentence :class:`~eventml.errors.BrokerError` that says what to install.

Examples
--------
>>> MIN_JAVA, KAFKA_VERSION.count(".")
(17, 2)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from eventml.errors import BrokerError

KAFKA_VERSION = "4.1.1"
SCALA_VERSION = "2.13"
LOG4J_VERSION = "2.25.3"
SLF4J_VERSION = "2.0.17"
MIN_JAVA = 17

_POM = f"""<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>eventml</groupId><artifactId>local-kafka</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_{SCALA_VERSION}</artifactId>
      <version>{KAFKA_VERSION}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId>
      <version>{SLF4J_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId>
      <version>{LOG4J_VERSION}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId>
      <version>{LOG4J_VERSION}</version></dependency>
  </dependencies>
</project>
"""

def cache_dir() -> Path:
    """Where the Kafka jars are cached: ``$EVENTML_CACHE_DIR`` or ``~/.cache/eventml``."""
    return Path(os.environ.get("EVENTML_CACHE_DIR") or Path.home() / ".cache" / "eventml")


def java_major_version(java: str = "java") -> int:
    """The major version of the ``java`` on PATH; :class:`BrokerError` if there is none."""
    if shutil.which(java) is None:
        raise BrokerError(
            f"Java was not found on PATH; install a JDK {MIN_JAVA} or newer "
            "(e.g. `apt install openjdk-17-jdk-headless`) or run Kafka with `docker compose up -d`."
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        raise BrokerError(f"could not read the Java version from `{java} -version`: {out.strip()[:200]}")
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 else major  # "1.8.0" means Java 8


def check_java(java: str = "java") -> int:
    """Raise :class:`BrokerError` unless ``java`` is version 17 or newer; return the version."""
    major = java_major_version(java)
    if major < MIN_JAVA:
        raise BrokerError(
            f"Kafka {KAFKA_VERSION} needs Java {MIN_JAVA} or newer but `{java}` is Java {major}; "
            f"install a newer JDK or put it first on PATH (or set JAVA_HOME)."
        )
    return major


def resolve_jars(mvn: str = "mvn", quiet: bool = True) -> Path:
    """Resolve the Kafka broker jars with Maven into the cache once; return their folder."""
    home = cache_dir() / f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}"
    lib = home / "lib"
    done = home / ".resolved"
    if done.exists():
        return lib
    if shutil.which(mvn) is None:
        raise BrokerError(
            "Maven (mvn) was not found on PATH; it is needed once to download the Kafka jars: "
            "install it (e.g. `apt install maven`) or run Kafka with `docker compose up -d`."
        )
    home.mkdir(parents=True, exist_ok=True)
    (home / "pom.xml").write_text(_POM)
    cmd = [mvn, "-B", "-f", str(home / "pom.xml"), "dependency:copy-dependencies",
           f"-DoutputDirectory={lib}", "-DincludeScope=runtime"]
    if quiet:
        cmd.insert(1, "-q")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise BrokerError(f"Maven could not resolve Apache Kafka {KAFKA_VERSION}:\n{tail}")
    done.write_text(KAFKA_VERSION)
    return lib
