/*
 * Batched UDP for ampguard (docs/performance.md): recvmmsg into buffers that
 * JavaScript allocated and shares with us, sendmmsg of whatever one
 * event-loop turn queued, driven by libuv's poll on the socket's fd so TCP,
 * timers and HTTP keep sharing the loop.
 *
 * Ownership: the receive arena, the metadata and the address arrays are
 * ArrayBuffer-backed views allocated by JS; we hold strong references to them
 * for as long as the socket struct lives, so their memory never goes away
 * under us. JS must copy a datagram it keeps past the callback: the next
 * batch overwrites the slot. Sends are copied into a send arena owned here.
 */
#define _GNU_SOURCE /* recvmmsg, sendmmsg, SO_RCVBUFFORCE */
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_BATCH 64
#define SEND_SLOTS 256
#define SEND_ARENA_BYTES (1u << 20)
/* bounded work per wakeup: libuv's poll is level-triggered, we come back */
#define MAX_BATCHES_PER_WAKEUP 8
#define MAX_ERRORS_PER_WAKEUP 8

/* metadata per received datagram, in the shared Int32Array */
#define META_LEN 0    /* bytes, or -1: truncated or unusable, JS drops it */
#define META_PORT 1   /* source port */
#define META_FAMILY 2 /* 4 or 6 (an IPv4-mapped source on a v6 socket is 4) */
#define META_MAPPED 3 /* 1 when the source was IPv4-mapped */
#define META_FIELDS 4

/* stats, read by JS */
enum {
  ST_RECV_PACKETS,
  ST_RECV_BATCHES,
  ST_RECV_TRUNCATED,
  ST_RECV_ERRORS,
  ST_SENT,
  ST_SEND_CALLS,
  ST_SEND_ERRORS,
  ST_SEND_DROPPED,
  ST_SOCKET_ERRORS, /* asynchronous socket errors (ICMP unreachable and the like), cleared and polled again */
  ST_COUNT
};

typedef struct env_state env_state;

typedef struct sock {
  uv_poll_t poll;
  env_state *es;
  napi_env env;
  int fd;
  int family; /* AF_INET or AF_INET6 */
  int connected;
  int started;
  int closing;
  int handle_closed;
  int js_refs; /* JS objects whose finalizers have not run: the wrapper and its two send functions */
  int want_writable;
  int dirty;
  struct sock *next_dirty;
  napi_ref self_ref; /* strong while open: the wrapper must outlive polling */
  napi_ref cb_ref;
  napi_ref arena_ref;
  napi_ref meta_ref;
  napi_ref addr_ref;
  napi_async_context async_ctx;
  uint8_t *arena;
  size_t slot_size;
  int batch;
  int32_t *meta;
  uint8_t *addrs;
  struct mmsghdr rmsgs[MAX_BATCH];
  struct iovec riov[MAX_BATCH];
  struct sockaddr_storage rnames[MAX_BATCH];
  /* send queue: messages [shead, scount) are waiting, their bytes in sarena */
  struct mmsghdr smsgs[SEND_SLOTS];
  struct iovec siov[SEND_SLOTS];
  struct sockaddr_storage snames[SEND_SLOTS];
  uint8_t *sarena;
  size_t sused;
  int shead;
  int scount;
  double stats[ST_COUNT];
} sock_t;

struct env_state {
  uv_loop_t *loop;
  uv_prepare_t prepare;
  uv_check_t check;
  sock_t *dirty_head;
  int handles_closed;
};

/* ---- helpers ---- */

static void throw_errno(napi_env env, int err, const char *what) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  const char *code = "EIO";
  switch (err) {
    case EADDRINUSE: code = "EADDRINUSE"; break;
    case EADDRNOTAVAIL: code = "EADDRNOTAVAIL"; break;
    case EACCES: code = "EACCES"; break;
    case EINVAL: code = "EINVAL"; break;
    case EAFNOSUPPORT: code = "EAFNOSUPPORT"; break;
    case ECONNREFUSED: code = "ECONNREFUSED"; break;
    case EBADF: code = "EBADF"; break;
    default: break;
  }
  napi_throw_error(env, code, msg);
}

/* Parses an IP literal into a sockaddr for this socket's family (IPv4 on a v6 socket becomes IPv4-mapped). */
static int fill_sockaddr(int family, const char *host, int port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  if (port < 0 || port > 65535) return -1;
  if (family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) return -1;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    *len = sizeof *sin;
    return 0;
  }
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons((uint16_t)port);
  *len = sizeof *sin6;
  if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) return 0;
  struct in_addr v4;
  if (inet_pton(AF_INET, host, &v4) != 1) return -1;
  sin6->sin6_addr.s6_addr[10] = 0xff;
  sin6->sin6_addr.s6_addr[11] = 0xff;
  memcpy(&sin6->sin6_addr.s6_addr[12], &v4, 4);
  return 0;
}

static int get_string(napi_env env, napi_value v, char *buf, size_t cap) {
  size_t n = 0;
  if (napi_get_value_string_latin1(env, v, buf, cap, &n) != napi_ok) return -1;
  if (n + 1 >= cap) return -1; /* too long to be an IP literal: never silently cut */
  return 0;
}

static int get_int(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok ? 0 : -1;
}

static void on_poll(uv_poll_t *handle, int status, int events);

static void sock_update_poll(sock_t *s) {
  if (!s->started || s->closing) return;
  uv_poll_start(&s->poll, UV_READABLE | (s->want_writable ? UV_WRITABLE : 0), on_poll);
}

/* ---- sending ---- */

/* Sends what is queued. EAGAIN keeps the rest and waits for writability; any
 * other error belongs to the first unsent message: it is skipped and counted. */
static void sock_flush(sock_t *s) {
  int retried = 0;
  while (s->shead < s->scount) {
    int r = sendmmsg(s->fd, s->smsgs + s->shead, (unsigned)(s->scount - s->shead), MSG_DONTWAIT);
    s->stats[ST_SEND_CALLS]++;
    if (r > 0) {
      s->shead += r;
      s->stats[ST_SENT] += r;
      continue;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && s->connected && errno == ECONNREFUSED && !retried) {
      /* a pending ICMP error of an earlier datagram, reported (and cleared) by this
       * call: this message was not sent and is not at fault, send it again */
      s->stats[ST_SOCKET_ERRORS]++;
      retried = 1;
      continue;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!s->want_writable) {
        s->want_writable = 1;
        sock_update_poll(s);
      }
      return;
    }
    s->stats[ST_SEND_ERRORS]++;
    s->shead++;
    retried = 0;
  }
  s->shead = 0;
  s->scount = 0;
  s->sused = 0;
  if (s->want_writable) {
    s->want_writable = 0;
    sock_update_poll(s);
  }
}

static void mark_dirty(sock_t *s) {
  if (s->dirty) return;
  s->dirty = 1;
  s->next_dirty = s->es->dirty_head;
  s->es->dirty_head = s;
}

static void unlink_dirty(sock_t *s) {
  if (!s->dirty) return;
  sock_t **pp = &s->es->dirty_head;
  while (*pp != NULL && *pp != s) pp = &(*pp)->next_dirty;
  if (*pp == s) *pp = s->next_dirty;
  s->dirty = 0;
  s->next_dirty = NULL;
}

static void flush_dirty(env_state *es) {
  while (es->dirty_head != NULL) {
    sock_t *s = es->dirty_head;
    es->dirty_head = s->next_dirty;
    s->dirty = 0;
    s->next_dirty = NULL;
    /* a socket waiting for writability flushes when libuv says it may: trying
     * now would cost a failing sendmmsg per loop turn */
    if (!s->closing && !s->want_writable) sock_flush(s);
  }
}

/* Queues one datagram of `a` then `b` (b may be empty). Returns 1 queued, 0 dropped. */
static int sock_enqueue(sock_t *s, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                        const struct sockaddr_storage *to, socklen_t tolen) {
  size_t total = alen + blen;
  if (total > 65535) {
    s->stats[ST_SEND_ERRORS]++;
    return 0;
  }
  if (s->scount == SEND_SLOTS || s->sused + total > SEND_ARENA_BYTES) {
    if (!s->want_writable) sock_flush(s);
    if (s->scount == SEND_SLOTS || s->sused + total > SEND_ARENA_BYTES) {
      s->stats[ST_SEND_DROPPED]++; /* the kernel does not take more: bounded, like a full socket buffer */
      return 0;
    }
  }
  int i = s->scount++;
  uint8_t *dst = s->sarena + s->sused;
  if (alen > 0) memcpy(dst, a, alen);
  if (blen > 0) memcpy(dst + alen, b, blen);
  s->sused += total;
  s->siov[i].iov_base = dst;
  s->siov[i].iov_len = total;
  struct msghdr *h = &s->smsgs[i].msg_hdr;
  memset(h, 0, sizeof *h);
  h->msg_iov = &s->siov[i];
  h->msg_iovlen = 1;
  if (to != NULL) {
    s->snames[i] = *to;
    h->msg_name = &s->snames[i];
    h->msg_namelen = tolen;
  }
  mark_dirty(s);
  return 1;
}

/* ---- receiving ---- */

static void report_exception(napi_env env) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value err;
    if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
  }
}

static void sock_read(sock_t *s) {
  napi_env env = s->env;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return;
  napi_value self, cb;
  napi_callback_scope cs = NULL;
  if (napi_get_reference_value(env, s->self_ref, &self) != napi_ok || self == NULL ||
      napi_get_reference_value(env, s->cb_ref, &cb) != napi_ok || cb == NULL ||
      napi_open_callback_scope(env, self, s->async_ctx, &cs) != napi_ok) {
    napi_close_handle_scope(env, hs);
    return;
  }
  int errors = 0;
  for (int b = 0; b < MAX_BATCHES_PER_WAKEUP && !s->closing;) {
    for (int i = 0; i < s->batch; i++) {
      s->riov[i].iov_base = s->arena + (size_t)i * s->slot_size;
      s->riov[i].iov_len = s->slot_size;
      struct msghdr *h = &s->rmsgs[i].msg_hdr;
      h->msg_name = &s->rnames[i];
      h->msg_namelen = sizeof s->rnames[i];
      h->msg_iov = &s->riov[i];
      h->msg_iovlen = 1;
      h->msg_control = NULL;
      h->msg_controllen = 0;
      h->msg_flags = 0;
      s->rmsgs[i].msg_len = 0;
    }
    int r = recvmmsg(s->fd, s->rmsgs, (unsigned)s->batch, MSG_DONTWAIT, NULL);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      /* e.g. ECONNREFUSED on a connected socket: the error is consumed, go on */
      if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) s->stats[ST_SOCKET_ERRORS]++;
      else s->stats[ST_RECV_ERRORS]++;
      if (++errors >= MAX_ERRORS_PER_WAKEUP) break;
      continue;
    }
    if (r == 0) break;
    b++;
    s->stats[ST_RECV_BATCHES]++;
    s->stats[ST_RECV_PACKETS] += r;
    for (int i = 0; i < r; i++) {
      int32_t *m = s->meta + i * META_FIELDS;
      uint8_t *a = s->addrs + i * 16;
      const struct msghdr *h = &s->rmsgs[i].msg_hdr;
      m[META_LEN] = (int32_t)s->rmsgs[i].msg_len;
      m[META_PORT] = 0;
      m[META_FAMILY] = 0;
      m[META_MAPPED] = 0;
      const struct sockaddr_storage *ss = &s->rnames[i];
      if (ss->ss_family == AF_INET && h->msg_namelen >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        m[META_FAMILY] = 4;
        m[META_PORT] = ntohs(sin->sin_port);
        memcpy(a, &sin->sin_addr, 4);
      } else if (ss->ss_family == AF_INET6 && h->msg_namelen >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        m[META_PORT] = ntohs(sin6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
          m[META_FAMILY] = 4;
          m[META_MAPPED] = 1;
          memcpy(a, &sin6->sin6_addr.s6_addr[12], 4);
        } else {
          m[META_FAMILY] = 6;
          memcpy(a, &sin6->sin6_addr, 16);
        }
      } else {
        m[META_LEN] = -1; /* no usable source address */
      }
      if (h->msg_flags & MSG_TRUNC) { /* longer than a slot: JS counts it, never sees a cut datagram */
        s->stats[ST_RECV_TRUNCATED]++;
        m[META_LEN] = -1;
      }
    }
    napi_value argv[1];
    napi_create_int32(env, r, &argv[0]);
    if (napi_call_function(env, self, cb, 1, argv, NULL) != napi_ok) report_exception(env);
    if (r < s->batch) break; /* drained */
  }
  napi_close_callback_scope(env, cs); /* runs nextTicks and microtasks the batch queued */
  napi_close_handle_scope(env, hs);
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  sock_t *s = (sock_t *)handle->data;
  if (s->closing) return;
  if (status < 0) {
    /* POLLERR: an ICMP error (a forged one, or a restarting backend's) set the
     * socket's error, and libuv stopped this handle before calling us. Clear the
     * error, count it and poll again, or the socket never reads another datagram. */
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) s->stats[ST_SOCKET_ERRORS]++;
    else s->stats[ST_RECV_ERRORS]++;
    uv_poll_start(&s->poll, UV_READABLE | (s->want_writable ? UV_WRITABLE : 0), on_poll);
    events = UV_READABLE | (s->want_writable ? UV_WRITABLE : 0);
  }
  if (events & UV_WRITABLE) sock_flush(s);
  if (events & UV_READABLE) sock_read(s);
  flush_dirty(s->es);
}

static void on_prepare(uv_prepare_t *h) { flush_dirty((env_state *)h->data); }
static void on_check(uv_check_t *h) { flush_dirty((env_state *)h->data); }

/* ---- lifetime ---- */

static void sock_free(sock_t *s) {
  napi_env env = s->env;
  if (s->cb_ref) napi_delete_reference(env, s->cb_ref);
  if (s->arena_ref) napi_delete_reference(env, s->arena_ref);
  if (s->meta_ref) napi_delete_reference(env, s->meta_ref);
  if (s->addr_ref) napi_delete_reference(env, s->addr_ref);
  if (s->self_ref) napi_delete_reference(env, s->self_ref);
  if (s->async_ctx) napi_async_destroy(env, s->async_ctx);
  free(s->sarena);
  free(s);
}

static void on_handle_closed(uv_handle_t *h) {
  sock_t *s = (sock_t *)h->data;
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
  s->handle_closed = 1;
  if (s->js_refs == 0) sock_free(s);
}

static void sock_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  sock_t *s = (sock_t *)data;
  if (--s->js_refs == 0 && s->handle_closed) sock_free(s);
}

/* Stops polling, sends what is queued, closes the fd once libuv lets go of it. */
static void sock_close(sock_t *s) {
  if (s->closing) return;
  sock_flush(s);
  s->closing = 1;
  unlink_dirty(s);
  if (s->started) {
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, on_handle_closed);
  } else {
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
    s->handle_closed = 1;
  }
  uint32_t rc;
  if (s->self_ref) napi_reference_unref(s->env, s->self_ref, &rc);
}

/* ---- JS methods ---- */

static sock_t *unwrap_this(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok) return NULL;
  void *p = NULL;
  if (napi_unwrap(env, self, &p) != napi_ok || p == NULL) {
    napi_throw_error(env, "EINVAL", "not a native UDP socket");
    return NULL;
  }
  return (sock_t *)p;
}

static int typed_array_bytes(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len) {
  napi_typedarray_type t;
  size_t n;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &t, &n, data, &ab, &off) != napi_ok || t != want) return -1;
  *len = n;
  return 0;
}

static napi_value js_send_to(napi_env env, napi_callback_info info);
static napi_value js_send(napi_env env, napi_callback_info info);

/* new UdpSocket(family 4|6, arena Uint8Array, meta Int32Array, addrs Uint8Array, slotSize, batch, onBatch) */
static napi_value js_ctor(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7], self;
  if (napi_get_cb_info(env, info, &argc, argv, &self, NULL) != napi_ok) return NULL;
  env_state *es = NULL;
  napi_get_instance_data(env, (void **)&es);
  int32_t family, slot, batch;
  void *arena, *meta, *addrs;
  size_t arena_len, meta_len, addrs_len;
  napi_valuetype cbt;
  if (argc < 7 || get_int(env, argv[0], &family) || (family != 4 && family != 6) ||
      typed_array_bytes(env, argv[1], napi_uint8_array, &arena, &arena_len) ||
      typed_array_bytes(env, argv[2], napi_int32_array, &meta, &meta_len) ||
      typed_array_bytes(env, argv[3], napi_uint8_array, &addrs, &addrs_len) || get_int(env, argv[4], &slot) ||
      get_int(env, argv[5], &batch) || napi_typeof(env, argv[6], &cbt) != napi_ok || cbt != napi_function) {
    napi_throw_type_error(env, "EINVAL", "UdpSocket(family, arena, meta, addrs, slotSize, batch, onBatch)");
    return NULL;
  }
  if (slot < 512 || slot > 65536 || batch < 1 || batch > MAX_BATCH || arena_len < (size_t)slot * (size_t)batch ||
      meta_len < (size_t)batch * META_FIELDS || addrs_len < (size_t)batch * 16) {
    napi_throw_range_error(env, "EINVAL", "arena, meta or addrs too small for slotSize x batch");
    return NULL;
  }
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, errno, "socket");
    return NULL;
  }
  sock_t *s = (sock_t *)calloc(1, sizeof *s);
  uint8_t *sarena = (uint8_t *)malloc(SEND_ARENA_BYTES);
  if (s == NULL || sarena == NULL) {
    free(s);
    free(sarena);
    close(fd);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  s->es = es;
  s->env = env;
  s->fd = fd;
  s->family = family == 4 ? AF_INET : AF_INET6;
  s->arena = (uint8_t *)arena;
  s->meta = (int32_t *)meta;
  s->addrs = (uint8_t *)addrs;
  s->slot_size = (size_t)slot;
  s->batch = batch;
  s->sarena = sarena;
  s->poll.data = s;
  napi_value resource_name;
  napi_create_string_utf8(env, "ampguard:udp", NAPI_AUTO_LENGTH, &resource_name);
  if (napi_wrap(env, self, s, sock_finalize, NULL, NULL) != napi_ok) {
    close(fd);
    free(sarena);
    free(s);
    napi_throw_error(env, "EINVAL", "wrap failed");
    return NULL;
  }
  s->handle_closed = 1; /* nothing for libuv to close until started */
  s->js_refs = 1;
  static const struct {
    const char *name;
    napi_callback cb;
  } fast[] = {{"sendTo", js_send_to}, {"send", js_send}};
  for (size_t i = 0; i < sizeof fast / sizeof fast[0]; i++) {
    napi_value fn;
    if (napi_create_function(env, fast[i].name, NAPI_AUTO_LENGTH, fast[i].cb, s, &fn) != napi_ok) continue;
    /* each function keeps the struct alive until its own finalizer: it may outlive the wrapper */
    if (napi_add_finalizer(env, fn, s, sock_finalize, NULL, NULL) != napi_ok) continue;
    s->js_refs++;
    napi_set_named_property(env, self, fast[i].name, fn);
  }
  napi_create_reference(env, argv[6], 1, &s->cb_ref);
  napi_create_reference(env, argv[1], 1, &s->arena_ref);
  napi_create_reference(env, argv[2], 1, &s->meta_ref);
  napi_create_reference(env, argv[3], 1, &s->addr_ref);
  napi_create_reference(env, self, 1, &s->self_ref);
  napi_async_init(env, self, resource_name, &s->async_ctx);
  return self;
}

static void set_buffers(int fd, int bytes) {
  /* FORCE passes rmem_max/wmem_max when privileged; the plain option caps at them */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
}

/* bind(host, port, reusePort, bufferBytes) */
static napi_value js_bind(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  sock_t *s = unwrap_this(env, info, &argc, argv);
  if (s == NULL) return NULL;
  char host[64];
  int32_t port, bufbytes;
  bool reuse = false;
  if (argc < 4 || get_string(env, argv[0], host, sizeof host) || get_int(env, argv[1], &port) ||
      napi_get_value_bool(env, argv[2], &reuse) != napi_ok || get_int(env, argv[3], &bufbytes)) {
    napi_throw_type_error(env, "EINVAL", "bind(host, port, reusePort, bufferBytes)");
    return NULL;
  }
  if (s->closing || s->fd < 0) {
    throw_errno(env, EBADF, "bind");
    return NULL;
  }
  struct sockaddr_storage ss;
  socklen_t len;
  if (fill_sockaddr(s->family, host, port, &ss, &len) != 0) {
    throw_errno(env, EINVAL, "bind: not an IP literal of the socket's family");
    return NULL;
  }
  int one = 1;
  if (reuse && setsockopt(s->fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    throw_errno(env, errno, "setsockopt SO_REUSEPORT");
    return NULL;
  }
  if (bufbytes > 0) set_buffers(s->fd, bufbytes);
  if (bind(s->fd, (struct sockaddr *)&ss, len) != 0) {
    throw_errno(env, errno, "bind");
    return NULL;
  }
  return NULL;
}

/* connect(host, port, bufferBytes): an upstream socket only hears its backend */
static napi_value js_connect(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  sock_t *s = unwrap_this(env, info, &argc, argv);
  if (s == NULL) return NULL;
  char host[64];
  int32_t port, bufbytes;
  if (argc < 3 || get_string(env, argv[0], host, sizeof host) || get_int(env, argv[1], &port) ||
      get_int(env, argv[2], &bufbytes)) {
    napi_throw_type_error(env, "EINVAL", "connect(host, port, bufferBytes)");
    return NULL;
  }
  if (s->closing || s->fd < 0) {
    throw_errno(env, EBADF, "connect");
    return NULL;
  }
  struct sockaddr_storage ss;
  socklen_t len;
  if (fill_sockaddr(s->family, host, port, &ss, &len) != 0) {
    throw_errno(env, EINVAL, "connect: not an IP literal of the socket's family");
    return NULL;
  }
  if (bufbytes > 0) set_buffers(s->fd, bufbytes);
  if (connect(s->fd, (struct sockaddr *)&ss, len) != 0) {
    throw_errno(env, errno, "connect");
    return NULL;
  }
  s->connected = 1;
  return NULL;
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  sock_t *s = unwrap_this(env, info, &argc, NULL);
  if (s == NULL) return NULL;
  if (s->started || s->closing) return NULL;
  int r = uv_poll_init(s->es->loop, &s->poll, s->fd);
  if (r != 0) {
    napi_throw_error(env, "EIO", uv_strerror(r));
    return NULL;
  }
  s->poll.data = s;
  s->started = 1;
  s->handle_closed = 0;
  r = uv_poll_start(&s->poll, UV_READABLE, on_poll);
  if (r != 0) {
    napi_throw_error(env, "EIO", uv_strerror(r));
    return NULL;
  }
  return NULL;
}

/* the hot methods carry the socket as their callback data: no unwrap per datagram */
static sock_t *data_this(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  void *data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, NULL, &data) != napi_ok || data == NULL) return NULL;
  return (sock_t *)data;
}

/* sendTo(buf, port, host): queued, sent when this loop turn's batch is flushed. Returns false when dropped. */
static napi_value js_send_to(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  sock_t *s = data_this(env, info, &argc, argv);
  if (s == NULL) return NULL;
  void *data;
  size_t len;
  char host[64];
  int32_t port;
  napi_value result;
  if (argc < 3 || napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok || get_int(env, argv[1], &port) ||
      get_string(env, argv[2], host, sizeof host)) {
    napi_throw_type_error(env, "EINVAL", "sendTo(buffer, port, host)");
    return NULL;
  }
  struct sockaddr_storage ss;
  socklen_t sl;
  int ok = 0;
  if (s->closing || s->connected || port <= 0 || fill_sockaddr(s->family, host, port, &ss, &sl) != 0)
    s->stats[ST_SEND_ERRORS]++;
  else
    ok = sock_enqueue(s, (const uint8_t *)data, len, NULL, 0, &ss, sl);
  napi_get_boolean(env, ok, &result);
  return result;
}

/* send(header | null, buf): to the connected peer, header and buf as one datagram */
static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  sock_t *s = data_this(env, info, &argc, argv);
  if (s == NULL) return NULL;
  void *hdata = NULL, *data;
  size_t hlen = 0, len;
  napi_valuetype ht;
  napi_value result;
  if (argc < 2 || napi_typeof(env, argv[0], &ht) != napi_ok ||
      (ht != napi_null && napi_get_buffer_info(env, argv[0], &hdata, &hlen) != napi_ok) ||
      napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "send(header | null, buffer)");
    return NULL;
  }
  int ok = 0;
  if (s->closing || !s->connected)
    s->stats[ST_SEND_ERRORS]++;
  else
    ok = sock_enqueue(s, (const uint8_t *)hdata, hlen, (const uint8_t *)data, len, NULL, 0);
  napi_get_boolean(env, ok, &result);
  return result;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  sock_t *s = unwrap_this(env, info, &argc, NULL);
  if (s != NULL) sock_close(s);
  return NULL;
}

static napi_value js_local_port(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  sock_t *s = unwrap_this(env, info, &argc, NULL);
  if (s == NULL) return NULL;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int port = -1;
  if (s->fd >= 0 && getsockname(s->fd, (struct sockaddr *)&ss, &len) == 0)
    port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                   : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  napi_value out;
  napi_create_int32(env, port, &out);
  return out;
}

/* stats(into: Float64Array) */
static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  sock_t *s = unwrap_this(env, info, &argc, argv);
  if (s == NULL) return NULL;
  void *data;
  size_t n;
  if (argc < 1 || typed_array_bytes(env, argv[0], napi_float64_array, &data, &n)) {
    napi_throw_type_error(env, "EINVAL", "stats(Float64Array)");
    return NULL;
  }
  double *out = (double *)data;
  for (size_t i = 0; i < n && i < ST_COUNT; i++) out[i] = s->stats[i];
  return NULL;
}

/* sdNotify(path, message): one datagram to systemd's NOTIFY_SOCKET (a path, or
 * "@name" in the abstract namespace), sent by this process itself so systemd
 * attributes it to the main PID. Returns 0 or the errno. */
static napi_value js_sd_notify(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  char msg[512];
  size_t plen = 0, mlen = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_string_utf8(env, argv[0], path, sizeof path, &plen) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], msg, sizeof msg, &mlen) != napi_ok || plen == 0 ||
      plen >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
    napi_throw_type_error(env, "EINVAL", "sdNotify(path, message)");
    return NULL;
  }
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, plen);
  if (path[0] == '@') sa.sun_path[0] = '\0';
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
  int err = 0;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) err = errno;
  else {
    if (sendto(fd, msg, mlen, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0) err = errno;
    close(fd);
  }
  napi_create_int32(env, err, &out);
  return out;
}

/* the socket's own poll wakes the process; our flush handles must not keep the loop alive */
static void start_env_handles(env_state *es) {
  uv_prepare_init(es->loop, &es->prepare);
  es->prepare.data = es;
  uv_prepare_start(&es->prepare, on_prepare);
  uv_unref((uv_handle_t *)&es->prepare);
  uv_check_init(es->loop, &es->check);
  es->check.data = es;
  uv_check_start(&es->check, on_check);
  uv_unref((uv_handle_t *)&es->check);
}

/* both handles live inside es: it is freed after the second close, in whichever order libuv runs them */
static void env_handle_closed(uv_handle_t *h) {
  env_state *es = (env_state *)h->data;
  if (++es->handles_closed == 2) free(es);
}

static void env_cleanup(void *arg) {
  env_state *es = (env_state *)arg;
  es->dirty_head = NULL;
  uv_close((uv_handle_t *)&es->prepare, env_handle_closed);
  uv_close((uv_handle_t *)&es->check, env_handle_closed);
}

static napi_value init(napi_env env, napi_value exports) {
  env_state *es = (env_state *)calloc(1, sizeof *es);
  if (es == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  if (napi_get_uv_event_loop(env, &es->loop) != napi_ok) {
    free(es);
    napi_throw_error(env, "EIO", "no event loop");
    return NULL;
  }
  start_env_handles(es);
  napi_set_instance_data(env, es, NULL, NULL);
  napi_add_env_cleanup_hook(env, env_cleanup, es);
  napi_property_descriptor methods[] = {
    {"bind", NULL, js_bind, NULL, NULL, NULL, napi_default, NULL},
    {"connect", NULL, js_connect, NULL, NULL, NULL, napi_default, NULL},
    {"start", NULL, js_start, NULL, NULL, NULL, napi_default, NULL},
    {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
    {"localPort", NULL, js_local_port, NULL, NULL, NULL, napi_default, NULL},
    {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value ctor;
  napi_define_class(env, "UdpSocket", NAPI_AUTO_LENGTH, js_ctor, NULL, sizeof methods / sizeof methods[0], methods, &ctor);
  napi_set_named_property(env, exports, "UdpSocket", ctor);
  napi_value notify;
  napi_create_function(env, "sdNotify", NAPI_AUTO_LENGTH, js_sd_notify, NULL, &notify);
  napi_set_named_property(env, exports, "sdNotify", notify);
  napi_value v;
  napi_create_int32(env, MAX_BATCH, &v);
  napi_set_named_property(env, exports, "maxBatch", v);
  napi_create_int32(env, META_FIELDS, &v);
  napi_set_named_property(env, exports, "metaFields", v);
  napi_create_int32(env, ST_COUNT, &v);
  napi_set_named_property(env, exports, "statCount", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
