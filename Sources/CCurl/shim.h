#ifndef TIDEMARK_CCURL_SHIM_H
#define TIDEMARK_CCURL_SHIM_H
/* libcurl's curl_easy_setopt, curl_easy_getinfo and curl_multi_setopt are variadic, which
 * Swift cannot call. A system-library target compiles no .c files, so each argument type
 * gets a static inline wrapper here (the pattern GRDB uses for sqlite3_config). */
#include <curl/curl.h>

typedef size_t (*tidemark_curl_data_cb)(char *ptr, size_t size, size_t nmemb, void *userdata);
typedef int (*tidemark_curl_xferinfo_cb)(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
                                         curl_off_t ultotal, curl_off_t ulnow);
typedef int (*tidemark_curl_seek_cb)(void *userdata, curl_off_t offset, int origin);

static inline CURLcode tidemark_curl_easy_setopt_long(CURL *h, CURLoption o, long v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode tidemark_curl_easy_setopt_off(CURL *h, CURLoption o, curl_off_t v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode tidemark_curl_easy_setopt_string(CURL *h, CURLoption o, const char *v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode tidemark_curl_easy_setopt_pointer(CURL *h, CURLoption o, void *v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode tidemark_curl_easy_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode tidemark_curl_easy_setopt_data_cb(CURL *h, CURLoption o, tidemark_curl_data_cb v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode tidemark_curl_easy_setopt_xferinfo_cb(CURL *h, CURLoption o, tidemark_curl_xferinfo_cb v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode tidemark_curl_easy_setopt_seek_cb(CURL *h, CURLoption o, tidemark_curl_seek_cb v) {
    return curl_easy_setopt(h, o, v);
}
static inline CURLcode tidemark_curl_easy_getinfo_long(CURL *h, CURLINFO i, long *v) {
    return curl_easy_getinfo(h, i, v);
}
static inline CURLcode tidemark_curl_easy_getinfo_off(CURL *h, CURLINFO i, curl_off_t *v) {
    return curl_easy_getinfo(h, i, v);
}
static inline CURLcode tidemark_curl_easy_getinfo_double(CURL *h, CURLINFO i, double *v) {
    return curl_easy_getinfo(h, i, v);
}
static inline CURLcode tidemark_curl_easy_getinfo_string(CURL *h, CURLINFO i, char **v) {
    return curl_easy_getinfo(h, i, v);
}
static inline CURLMcode tidemark_curl_multi_setopt_long(CURLM *m, CURLMoption o, long v) {
    return curl_multi_setopt(m, o, v);
}
/* CURLVERSION_NOW is a macro Swift does not import. */
static inline curl_version_info_data *tidemark_curl_version_info(void) {
    return curl_version_info(CURLVERSION_NOW);
}
#endif
