#ifndef TIDEMARK_CRDKAFKA_SHIM_H
#define TIDEMARK_CRDKAFKA_SHIM_H
/* librdkafka's consumer, producer and admin API, plus the in-process mock cluster
 * (rdkafka_mock.h) used by tests and by etl-devbroker only. */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#endif
