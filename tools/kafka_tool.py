#!/usr/bin/env python3
"""Produce and check Kafka test data with the Python confluent-kafka client.

confluent-kafka bundles its own librdkafka (2.16), independent of the Debian librdkafka (2.0.2)
that the Swift code links, so data produced or checked here does not go through our code.

  kafka_tool.py produce --bootstrap B --topic T --count N [--partitions P] [--prefix S] [--start I]
      Sends values "{prefix}-{i}" for i in [start, start+count), partition i % P when --partitions
      is given (else librdkafka's partitioner on key str(i)), idempotent producer, acks=all.
      Prints {"produced": N}.
  kafka_tool.py consume --bootstrap B --topic T --group G [--expect N] [--timeout S] [--commit]
      Reads from the committed offsets (earliest when none) until --expect records arrived or
      --timeout seconds passed. Prints a JSON list of [partition, offset, value].
  kafka_tool.py commit --bootstrap B --topic T --group G --partition P --offset O
      Commits offset O for partition P in group G (tests use it to move a group's offset).
  kafka_tool.py create-topic --bootstrap B --topic T --partitions P
      Creates topic T with P partitions through the admin API (CreateTopics) and waits until
      Metadata lists it with all P partitions. For brokers that do not create topics on first use
      (Tansu); the dev broker has no CreateTopics and auto-creates topics with 4 partitions.
      Prints {"created": T, "partitions": P}.

Consumers set fetch.queue.backoff.ms=10: brokers that ignore max.partition.fetch.bytes (Tansu)
otherwise leave fetching idle about 1 s at a time (docs/kafka.md).
"""
import argparse
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer


def produce(args):
    errors = []

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(str(err))

    p = Producer({
        "bootstrap.servers": args.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 20,
        "batch.num.messages": 10000,
        "queue.buffering.max.messages": 500000,
    })
    for i in range(args.start, args.start + args.count):
        value = f"{args.prefix}-{i}".encode()
        kwargs = {"value": value, "on_delivery": on_delivery}
        if args.partitions:
            kwargs["partition"] = i % args.partitions
        else:
            kwargs["key"] = str(i).encode()
        while True:
            try:
                p.produce(args.topic, **kwargs)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    remaining = p.flush(60)
    if remaining or errors:
        print(json.dumps({"error": errors[:5], "undelivered": remaining}), file=sys.stderr)
        return 1
    print(json.dumps({"produced": args.count}))
    return 0


def consume(args):
    c = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": 6000,
        "fetch.queue.backoff.ms": 10,
    })
    c.subscribe([args.topic])
    out = []
    deadline = time.time() + args.timeout
    try:
        while time.time() < deadline and (args.expect is None or len(out) < args.expect):
            msgs = c.consume(num_messages=1000, timeout=0.5)
            for m in msgs:
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    print(json.dumps({"error": str(m.error())}), file=sys.stderr)
                    return 1
                out.append([m.partition(), m.offset(), m.value().decode("utf-8", "replace")])
        if args.commit and out:
            c.commit(asynchronous=False)
    finally:
        c.close()
    json.dump(out, sys.stdout)
    print()
    return 0


def commit(args):
    """Commits an explicit offset for one partition in a group (e.g. to rewind it in tests).

    It joins the group first (subscribe, wait for the assignment) and commits as a member:
    some coordinators (the dev broker's among them) refuse commits from non-members once a
    group has had members.
    """
    from confluent_kafka import TopicPartition
    c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group, "enable.auto.commit": False,
                  "session.timeout.ms": 6000})
    c.subscribe([args.topic])
    deadline = time.time() + 60
    while not any(tp.partition == args.partition for tp in c.assignment()):
        if time.time() > deadline:
            print(json.dumps({"error": "no assignment within 60 s"}), file=sys.stderr)
            return 1
        c.poll(0.2)
    c.commit(offsets=[TopicPartition(args.topic, args.partition, args.offset)], asynchronous=False)
    c.close()
    print(json.dumps({"committed": args.offset}))
    return 0


def create_topic(args):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    futures = admin.create_topics([NewTopic(args.topic, args.partitions, 1)], operation_timeout=30)
    try:
        futures[args.topic].result(60)
    except Exception as e:
        print(json.dumps({"error": f"create {args.topic}: {e}"}), file=sys.stderr)
        return 1
    deadline = time.time() + 60
    while True:
        md = admin.list_topics(topic=args.topic, timeout=10).topics.get(args.topic)
        if md is not None and md.error is None and len(md.partitions) == args.partitions:
            break
        if time.time() > deadline:
            print(json.dumps({"error": f"{args.topic} not listed with {args.partitions} partitions within 60 s"}),
                  file=sys.stderr)
            return 1
        time.sleep(0.1)
    print(json.dumps({"created": args.topic, "partitions": args.partitions}))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    pp = sub.add_parser("produce")
    pp.add_argument("--bootstrap", required=True)
    pp.add_argument("--topic", required=True)
    pp.add_argument("--count", type=int, required=True)
    pp.add_argument("--partitions", type=int)
    pp.add_argument("--prefix", default="rec")
    pp.add_argument("--start", type=int, default=0)
    cp = sub.add_parser("consume")
    cp.add_argument("--bootstrap", required=True)
    cp.add_argument("--topic", required=True)
    cp.add_argument("--group", required=True)
    cp.add_argument("--expect", type=int)
    cp.add_argument("--timeout", type=float, default=30)
    cp.add_argument("--commit", action="store_true")
    mp = sub.add_parser("commit")
    mp.add_argument("--bootstrap", required=True)
    mp.add_argument("--topic", required=True)
    mp.add_argument("--group", required=True)
    mp.add_argument("--partition", type=int, required=True)
    mp.add_argument("--offset", type=int, required=True)
    tp = sub.add_parser("create-topic")
    tp.add_argument("--bootstrap", required=True)
    tp.add_argument("--topic", required=True)
    tp.add_argument("--partitions", type=int, required=True)
    args = ap.parse_args()
    return {"produce": produce, "consume": consume, "commit": commit, "create-topic": create_topic}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
