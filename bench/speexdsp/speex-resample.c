/*
 * Reference resampler for bench/resampler-vs-speexdsp.ts: resamples raw s16le mono with
 * speexdsp's speex_resampler_process_int in 20 ms frames, the way the call path feeds ours.
 *
 * Build: cc -O2 -o speex-resample speex-resample.c -lspeexdsp   (the bench script does this in a temp dir)
 * Usage: speex-resample <quality 0-10> <from Hz> <to Hz> <in.raw> <out.raw> [runs]
 *
 * Runs the whole input runs+1 times on a fresh resampler each time (the first run only warms caches,
 * like the JIT warm-up on the JavaScript side), writes the output of the last run, and prints one JSON
 * line: per-run nanoseconds of the processing loop alone (no file I/O, no resampler construction),
 * sample counts and speexdsp's own latency figures.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <speex/speex_resampler.h>

#define PTIME_MS 20
#define MAX_RUNS 50

static void die(const char *what, const char *detail) {
  fprintf(stderr, "speex-resample: %s [%s]\n", what, detail);
  exit(1);
}

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static short *read_all(const char *path, size_t *count) {
  FILE *f = fopen(path, "rb");
  if (!f) die("cannot open input", path);
  if (fseek(f, 0, SEEK_END) != 0) die("cannot seek input", path);
  long bytes = ftell(f);
  if (bytes < 0) die("cannot size input", path);
  rewind(f);
  short *buf = malloc((size_t)bytes + 2);
  if (!buf) die("out of memory reading input", path);
  if (fread(buf, 1, (size_t)bytes, f) != (size_t)bytes) die("short read", path);
  fclose(f);
  *count = (size_t)bytes / 2;
  return buf;
}

int main(int argc, char **argv) {
  if (argc < 6 || argc > 7) {
    fprintf(stderr, "usage: speex-resample <quality 0-10> <from Hz> <to Hz> <in.raw> <out.raw> [runs]\n");
    return 64;
  }
  int quality = atoi(argv[1]);
  unsigned from = (unsigned)strtoul(argv[2], NULL, 10);
  unsigned to = (unsigned)strtoul(argv[3], NULL, 10);
  int runs = argc == 7 ? atoi(argv[6]) : 1;
  if (quality < 0 || quality > 10) die("quality out of range", argv[1]);
  if (from == 0 || to == 0 || (from * PTIME_MS) % 1000 != 0) die("rate must be positive and give whole 20 ms frames", argv[2]);
  if (runs < 1 || runs > MAX_RUNS) die("runs out of range", argc == 7 ? argv[6] : "1");

  size_t n_in = 0;
  short *in = read_all(argv[4], &n_in);
  const unsigned frame = from * PTIME_MS / 1000;
  /* Room for everything one frame can yield plus speexdsp's rounding slack. */
  const unsigned frame_cap = 2 * (frame * to / from) + 16;
  size_t cap = (n_in / frame + 1) * (size_t)frame_cap;
  short *out = malloc(cap * sizeof(short));
  if (!out) die("out of memory for output", argv[5]);

  long long ns[MAX_RUNS + 1];
  size_t n_out = 0;
  int in_latency = 0, out_latency = 0;
  for (int run = 0; run <= runs; run++) {
    int err = 0;
    SpeexResamplerState *st = speex_resampler_init(1, from, to, quality, &err);
    if (!st || err != RESAMPLER_ERR_SUCCESS) die("speex_resampler_init failed", speex_resampler_strerror(err));
    in_latency = speex_resampler_get_input_latency(st);
    out_latency = speex_resampler_get_output_latency(st);
    size_t produced = 0;
    long long t0 = now_ns();
    for (size_t pos = 0; pos + frame <= n_in; pos += frame) {
      size_t done = 0;
      /* process_int may stop early when the output room runs out; feed the rest of the frame again. */
      while (done < frame) {
        spx_uint32_t in_len = frame - (spx_uint32_t)done;
        spx_uint32_t out_len = (spx_uint32_t)(cap - produced < frame_cap ? cap - produced : frame_cap);
        err = speex_resampler_process_int(st, 0, in + pos + done, &in_len, out + produced, &out_len);
        if (err != RESAMPLER_ERR_SUCCESS) die("speex_resampler_process_int failed", speex_resampler_strerror(err));
        if (in_len == 0 && out_len == 0) die("resampler made no progress", argv[4]);
        done += in_len;
        produced += out_len;
      }
    }
    ns[run] = now_ns() - t0;
    speex_resampler_destroy(st);
    n_out = produced;
  }

  FILE *f = fopen(argv[5], "wb");
  if (!f) die("cannot open output", argv[5]);
  if (fwrite(out, sizeof(short), n_out, f) != n_out) die("short write", argv[5]);
  if (fclose(f) != 0) die("cannot close output", strerror(errno));

  printf("{\"quality\":%d,\"from\":%u,\"to\":%u,\"inSamples\":%zu,\"outSamples\":%zu,"
         "\"inputLatency\":%d,\"outputLatency\":%d,\"warmupNs\":%lld,\"runsNs\":[",
         quality, from, to, n_in - n_in % frame, n_out, in_latency, out_latency, ns[0]);
  for (int run = 1; run <= runs; run++) printf("%s%lld", run > 1 ? "," : "", ns[run]);
  printf("]}\n");
  free(in);
  free(out);
  return 0;
}
