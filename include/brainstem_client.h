/* brainstem_client.h: the C ABI of the brainstem client (libbrainstem_client.so), for C
 * programs and for other languages' foreign-function interfaces (the Python package uses it via
 * ctypes). It wraps the C++ client (client/cpp/brainstem/client.h): one handle speaks either the
 * shared-memory transport ("shm://name") or the HTTP API ("http://host:port"); see
 * docs/clients.md.
 *
 * Thread-safety: a bs_client may be used by many threads at once, except bs_close, which must be
 * the last call on it. Error text is kept per thread (bs_last_error).
 *
 * Conventions: every function returns a bs_status (0 = BS_OK); no C++ exception ever crosses
 * this boundary. Pointers the caller passes are borrowed for the call only.
 */
#ifndef BRAINSTEM_CLIENT_H_
#define BRAINSTEM_CLIENT_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define BS_API __attribute__((visibility("default")))
#else
#define BS_API
#endif

/* Codes 0-6 are the shm protocol's ShmStatus codes; 7-10 cover the rest of the client. */
typedef enum bs_status {
  BS_OK = 0,
  BS_INVALID_ARGUMENT = 1,  /* an input was refused; bs_last_error names it */
  BS_CHECKSUM_MISMATCH = 2, /* the server found the payload corrupted */
  BS_UNAVAILABLE = 3,       /* retry: queue full, server stopping or restarted (shm: the next
                               call reconnects), or nothing listens at the URL */
  BS_DEADLINE_EXCEEDED = 4,
  BS_INTERNAL = 5,
  BS_UNSUPPORTED = 6, /* e.g. frames over http */
  BS_NOT_FOUND = 7,
  BS_FAILED_PRECONDITION = 8, /* e.g. the server refused the handshake, or a region is invalid */
  BS_RESOURCE_EXHAUSTED = 9,
  BS_BUFFER_TOO_SMALL = 10 /* an output buffer the caller passed is too small */
} bs_status;

/* Pixel formats (as in the shm protocol). */
enum { BS_BGRA8 = 1, BS_RGBA8 = 2, BS_RGB8 = 3, BS_GRAY8 = 4 };

typedef struct bs_client bs_client;
typedef struct bs_frame bs_frame;

/* Where the time of one call went, in nanoseconds (docs/clients.md, "Timings"). Over http only
 * total_ns and server_ns are filled. */
typedef struct bs_timings {
  uint64_t total_ns;
  uint64_t request_ns;
  uint64_t queue_ns;
  uint64_t compute_ns;
  uint64_t response_ns;
  uint64_t server_ns;
} bs_timings;

/* Connects to `url` ("shm://default", "shm:///abs/path.sock", "http://127.0.0.1:8080"; shm URLs
 * take ?slots=&rows=&frames=&frame_bytes=&checksum=). On success stores a new handle in *out.
 * On failure writes a NUL-terminated message into err (when err_len > 0). */
BS_API int bs_connect(const char* url, bs_client** out, char* err, size_t err_len);

/* Closes the handle (NULL is allowed). REQUIRES: no other call on it is running. */
BS_API void bs_close(bs_client* client);

/* The calling thread's most recent error message from any bs_ function ("" after success). The
 * pointer stays valid until this thread's next bs_ call. */
BS_API const char* bs_last_error(const bs_client* client);

/* "shm" or "http". */
BS_API const char* bs_transport(const bs_client* client);
/* Raw feature values per observation row; actions per row. */
BS_API int32_t bs_input_width(const bs_client* client);
BS_API int32_t bs_output_width(const bs_client* client);
/* The name of action column i (NULL when out of range). http: from /metadata. shm: the region
 * carries no names: throttle, brake, steer when output_width is 3, else a0..aN-1. */
BS_API const char* bs_output_name(const bs_client* client, int32_t i);
/* Input features in column order: their count, and name/size of feature i (shm: the CarlaRL
 * layout speed, steering, sensors). Returns BS_NOT_FOUND for i out of range. */
BS_API int32_t bs_input_feature_count(const bs_client* client);
BS_API int bs_input_feature(const bs_client* client, int32_t i, const char** name, int32_t* size);
/* The server's generation (shm; changes when the server restarts); 0 over http. */
BS_API uint64_t bs_generation(const bs_client* client);

/* Policy step(s): `rows` holds n_rows * row_width raw feature values in the model's column
 * order (REQUIRES row_width == bs_input_width); writes n_rows * bs_output_width actions to
 * actions_out (BS_BUFFER_TOO_SMALL when actions_capacity, counted in floats, is smaller).
 * deterministic = 0 samples; then `seed` makes it reproducible, and seed 0 means "any seed".
 * timings may be NULL. */
BS_API int bs_predict_raw(bs_client* client, const float* rows, int32_t n_rows, int32_t row_width,
                          float* actions_out, int32_t actions_capacity, int deterministic,
                          uint64_t seed, bs_timings* timings);

/* Hands one image to the server (copied into a frame slot) and waits for its answer. The
 * server's text answer is written NUL-terminated into result_out (may be NULL when
 * result_capacity is 0; truncated to fit). shm only: BS_UNSUPPORTED over http. */
BS_API int bs_submit_frame(bs_client* client, const uint8_t* pixels, uint32_t width,
                           uint32_t height, uint32_t stride, uint32_t format, uint64_t timestamp_ns,
                           char* result_out, size_t result_capacity, bs_timings* timings);

/* What the server does with a frame (docs/shm-protocol.md section 3, docs/perception.md). */
enum {
  BS_FRAME_VERIFY = 0,    /* verify the checksum and acknowledge (shm only) */
  BS_FRAME_OCR_TEXT = 1,  /* OCR: all text in reading order */
  BS_FRAME_OCR_FIND = 2,  /* OCR: boxes matching `query`, best first */
  BS_FRAME_OCR_REGION = 3 /* OCR: the text inside `query` = "x,y,w,h" */
};

/* bs_submit_frame with a request kind and its query (NUL-terminated UTF-8, at most 3071 bytes;
 * NULL for kinds 0 and 1). Over http the OCR kinds are posted to /v1/ocr and /v1/ocr/find and
 * result_out receives that route's JSON; BS_FRAME_VERIFY is BS_UNSUPPORTED there. */
BS_API int bs_submit_frame_request(bs_client* client, const uint8_t* pixels, uint32_t width,
                                   uint32_t height, uint32_t stride, uint32_t format,
                                   uint64_t timestamp_ns, uint32_t request, const char* query,
                                   char* result_out, size_t result_capacity, bs_timings* timings);

/* Zero copy: claims a frame slot; *pixels points into shared memory, *capacity bytes. Write the
 * image there, then bs_frame_submit (which consumes the handle) or bs_frame_release. */
BS_API int bs_frame_acquire(bs_client* client, bs_frame** out, uint8_t** pixels,
                            uint64_t* capacity);
BS_API int bs_frame_submit(bs_frame* frame, uint32_t width, uint32_t height, uint32_t stride,
                           uint32_t format, uint64_t timestamp_ns, char* result_out,
                           size_t result_capacity, bs_timings* timings);
/* bs_frame_submit with a request kind and query, as in bs_submit_frame_request. */
BS_API int bs_frame_submit_request(bs_frame* frame, uint32_t width, uint32_t height,
                                   uint32_t stride, uint32_t format, uint64_t timestamp_ns,
                                   uint32_t request, const char* query, char* result_out,
                                   size_t result_capacity, bs_timings* timings);
BS_API void bs_frame_release(bs_frame* frame);

/* FOR TESTS ONLY. name "corrupt_after_checksum": value 1 makes every later shm call on this
 * handle flip one payload byte after computing its checksum, so the server must answer
 * BS_CHECKSUM_MISMATCH. Returns BS_INVALID_ARGUMENT for an unknown name. */
BS_API int bs_set_test_option(bs_client* client, const char* name, int64_t value);

#ifdef __cplusplus
}
#endif

#endif /* BRAINSTEM_CLIENT_H_ */
