#ifndef TIDEMARK_CMALLOC_SHIM_H
#define TIDEMARK_CMALLOC_SHIM_H
/* glibc allocator tuning (mallopt(3)): Swift's Glibc module does not import <malloc.h>.
 * The engine fixes M_MMAP_THRESHOLD at start (Pipeline/HeapTuning.swift). Part of glibc;
 * nothing to link. */
#include <malloc.h>
#endif
