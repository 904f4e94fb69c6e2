"""The scenarios, one module each, in the order they run and are reported. Each module's
`scenario(ctx, res, work)` runs in its own work directory and records what it saw in `res`
(chaos.report.Result); `ctx` is the run's chaos.runtime.Context."""
from . import (badinput, broker, disk, edges, eventtime, failpoints, fileproducer, kill, operational, rebalance, s3,
               security, transactional)

# (name for --only, title in the results table, entry point)
SCENARIOS = [
    ("failpoints", "1. Failpoint matrix (each failpoint x restart / etl-recover + restart)", failpoints.scenario),
    ("kill", "2. Random kill -9 loop", kill.scenario),
    ("s3", "3. S3 faults through the fault proxy", s3.scenario),
    ("broker", "4. Broker faults (dev broker control channel)", broker.scenario),
    ("fileproducer", "4b. File producer (etl-produce) under Produce faults and kill -9", fileproducer.scenario),
    ("rebalance", "5. Rebalance (3 engines) and SIGSTOP zombie", rebalance.scenario),
    ("disk", "6. Disk full (4 MiB tmpfs staging) and read-only manifest", disk.scenario),
    ("badinput", "7. Bad input (5% malformed, 2 MiB lines)", badinput.scenario),
    ("security", "8. Security (planted secrets, modes, hostile topic names)", security.scenario),
    ("edges", "9. Protocol edges: etl-recover vs a second engine, a lost staged file, dead letters", edges.scenario),
    ("transactional", "10. Transactional topic on Tansu (markers make offsets sparse; abort; kill -9)", transactional.scenario),
    ("operational", "11. Operational truth: assignment wait, static membership, retention loss", operational.scenario),
    ("eventtime", "12. Event-time layout ([sink] path) under kill -9; a fresh instance probes every key", eventtime.scenario),
]
