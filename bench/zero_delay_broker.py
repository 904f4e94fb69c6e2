#!/usr/bin/env python3
"""A Kafka broker for benchmarks whose consumer groups join without the initial rebalance delay.

The dev broker (etl-devbroker) is librdkafka's mock cluster from Debian's librdkafka 2.0.2, which
holds every group's first join for a fixed 3,000 ms: the mock's stand-in for a Kafka broker's
`group.initial.rebalance.delay.ms` (3 s by default). Newer librdkafka lets a test set that delay:
`rd_kafka_mock_group_initial_rebalance_delay_ms()` (rdkafka_mock.h). The confluent-kafka wheel the
benches already use ships such a librdkafka (2.16); this script loads it with ctypes, starts a
one-broker mock cluster on 127.0.0.1 with the delay set to --delay-ms (0 by default, as in Kafka's
own test and development configurations), creates the topics, prints the bootstrap address on its
first stdout line and runs until SIGTERM or SIGINT.

  python3 bench/zero_delay_broker.py --topics rec:4 [--delay-ms 0]

Only `make bench-recovery` uses it, to measure the engine's restart without the broker's delay.
It is not a product part and not a replacement for the dev broker.
"""
import argparse
import ctypes
import glob
import os
import signal
import sys

import confluent_kafka


def load_wheel_librdkafka():
    """The librdkafka bundled in the confluent-kafka wheel (confluent_kafka.libs/librdkafka-*.so.1)."""
    site = os.path.dirname(os.path.dirname(confluent_kafka.__file__))
    found = glob.glob(os.path.join(site, "confluent_kafka.libs", "librdkafka*.so*"))
    if not found:
        sys.exit(f"zero_delay_broker: no librdkafka in {site}/confluent_kafka.libs "
                 f"(confluent-kafka {confluent_kafka.version()[0]} from a wheel is needed)")
    lib = ctypes.CDLL(found[0])
    if not hasattr(lib, "rd_kafka_mock_group_initial_rebalance_delay_ms"):
        sys.exit(f"zero_delay_broker: {found[0]} (librdkafka {confluent_kafka.libversion()[0]}) has no "
                 "rd_kafka_mock_group_initial_rebalance_delay_ms; it needs librdkafka >= 2.5")
    c_void_p, c_char_p, c_int = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    signatures = {  # rdkafka.h / rdkafka_mock.h
        "rd_kafka_conf_new": ([], c_void_p),
        "rd_kafka_new": ([c_int, c_void_p, c_char_p, ctypes.c_size_t], c_void_p),
        "rd_kafka_mock_cluster_new": ([c_void_p, c_int], c_void_p),
        "rd_kafka_mock_cluster_bootstraps": ([c_void_p], c_char_p),
        "rd_kafka_mock_group_initial_rebalance_delay_ms": ([c_void_p, ctypes.c_int32], None),
        "rd_kafka_mock_topic_create": ([c_void_p, c_char_p, c_int, c_int], c_int),
    }
    for name, (args, result) in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, result
    return lib


def parse_topics(spec):
    topics = []
    for item in spec.split(","):
        name, _, partitions = item.strip().partition(":")
        if not name or not partitions.isdigit() or int(partitions) < 1:
            raise argparse.ArgumentTypeError(f"topic '{item}' is not NAME:PARTITIONS")
        topics.append((name, int(partitions)))
    return topics


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--topics", type=parse_topics, required=True, help="NAME:PARTITIONS[,NAME:PARTITIONS...]")
    ap.add_argument("--delay-ms", type=int, default=0, help="initial rebalance delay of new groups (default 0)")
    args = ap.parse_args()
    lib = load_wheel_librdkafka()
    errstr = ctypes.create_string_buffer(512)
    # RD_KAFKA_PRODUCER (0): the handle only hosts the mock cluster's thread.
    rk = lib.rd_kafka_new(0, lib.rd_kafka_conf_new(), errstr, len(errstr))
    if not rk:
        sys.exit(f"zero_delay_broker: rd_kafka_new: {errstr.value.decode()}")
    cluster = lib.rd_kafka_mock_cluster_new(rk, 1)
    if not cluster:
        sys.exit("zero_delay_broker: rd_kafka_mock_cluster_new failed")
    lib.rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, args.delay_ms)
    for name, partitions in args.topics:
        err = lib.rd_kafka_mock_topic_create(cluster, name.encode(), partitions, 1)
        if err:
            sys.exit(f"zero_delay_broker: creating topic {name} ({partitions} partitions) failed: error {err}")
    print(lib.rd_kafka_mock_cluster_bootstraps(cluster).decode(), flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    main()
