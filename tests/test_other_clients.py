"""The wire format is the contract: the Java Kafka client writes events eventml reads, and reads
the events eventml writes. The Java side runs in jshell (part of the JDK) on the broker's jars."""

from __future__ import annotations

import shutil
import subprocess

import orjson
import pytest

import eventml as em
from eventml.kafka import resolve_jars

pytestmark = pytest.mark.integration

JAVA_CLIENT = r"""
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.clients.consumer.*;
var servers = System.getProperty("servers");
var topic = System.getProperty("topic");
var p = new java.util.Properties();
p.put("bootstrap.servers", servers);
p.put("key.serializer", "org.apache.kafka.common.serialization.StringSerializer");
p.put("value.serializer", "org.apache.kafka.common.serialization.StringSerializer");
var producer = new KafkaProducer<String, String>(p);
producer.send(new ProducerRecord<>(topic + ".from-java", "j-1",
    "{\"id\": \"j-1\", \"features\": {\"x1\": 0.3, \"color\": \"red\"}, \"label\": 1}")).get();
producer.close();
var c = new java.util.Properties();
c.put("bootstrap.servers", servers);
c.put("key.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
c.put("value.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
var consumer = new KafkaConsumer<String, String>(c);
var tp = new org.apache.kafka.common.TopicPartition(topic, 0);
consumer.assign(java.util.List.of(tp));
consumer.seekToBeginning(java.util.List.of(tp));
int seen = 0;
while (seen < Integer.getInteger("expect")) {
    for (var r : consumer.poll(java.time.Duration.ofSeconds(1))) { System.out.println("VALUE " + r.key() + " " + r.value()); seen++; }
}
consumer.close();
/exit
"""


def test_java_client_and_eventml_read_each_others_events(kafka_bootstrap, topic, tmp_path):
    if shutil.which("jshell") is None:
        pytest.skip("jshell (part of the JDK) is not on PATH")
    sent = list(em.synthetic("stagger", 20, seed=5))
    em.produce(sent, topic, progress=False)
    script = tmp_path / "client.jsh"
    script.write_text(JAVA_CLIENT)
    lib = resolve_jars()
    classpath = ":".join(str(jar) for jar in sorted(lib.glob("*.jar"))
                         if jar.name.startswith(("kafka-clients", "slf4j-api", "lz4", "snappy", "zstd")))
    proc = subprocess.run(
        ["jshell", f"-R-Dservers={kafka_bootstrap}", f"-R-Dtopic={topic}", f"-R-Dexpect={len(sent)}",
         "--class-path", classpath, str(script)],
        capture_output=True, text=True, timeout=120,
    )
    lines = [line.split(" ", 2) for line in proc.stdout.splitlines() if line.startswith("VALUE ")]
    assert [key for _, key, _ in lines] == [e.id for e in sent], proc.stderr[-2000:]
    assert [em.events.decode_event(value.encode()) for _, _, value in lines] == sent
    assert [orjson.loads(value) for _, _, value in lines] == [e.to_dict() for e in sent]

    (from_java,) = em.read_events(f"{topic}.from-java")
    assert from_java.id == "j-1" and from_java.label == 1
    assert from_java.features == {"x1": 0.3, "color": "red"}
