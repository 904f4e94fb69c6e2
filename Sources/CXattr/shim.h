#ifndef TIDEMARK_CXATTR_SHIM_H
#define TIDEMARK_CXATTR_SHIM_H
/* Extended attributes (xattr(7)): Swift's Glibc module does not import <sys/xattr.h>.
 * FileStore keeps object metadata in a user.* attribute set before the object is linked
 * into place, so metadata appears atomically with the data. Part of glibc; nothing to link. */
#include <sys/types.h>
#include <sys/xattr.h>
#endif
