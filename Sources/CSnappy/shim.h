#ifndef TIDEMARK_CSNAPPY_SHIM_H
#define TIDEMARK_CSNAPPY_SHIM_H
#include <snappy-c.h>
#endif
