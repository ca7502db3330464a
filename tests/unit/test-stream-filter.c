/*
 * test-stream-filter.c - rec_reader_set_tensor_filter: filtered-out tensors are skipped (raw and
 * zstd), kept ones read intact, the next record still parses, truncation inside a skipped tensor
 * is still an error.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "ct.h"
#include "stream.h"

static int keep_b(const char *name, void *ctx) {
    (*(int *)ctx)++;
    return name[0] == 'b';
}

int main(void) {
    char path[] = "/tmp/test-stream-filter.XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    struct tn_arena *a = tn_arena_new(0);
    int64_t big = 300000, small = 7;
    for (int codec = 0; codec < 2; codec++) {
        struct rec_wopts o = { codec ? REC_ZSTD : REC_RAW, 1, 0 };
        struct rec_writer *w = rec_writer_open(path, &o);
        for (int k = 0; k < 2; k++) {
            struct rec r;
            rec_init(&r, a, "test.x/1", k ? "second" : "first");
            struct tn_tensor *t1 = tn_new(a, TN_F32, 1, &big, "a-big"), *t2 = tn_new(a, TN_I32, 1, &small, "b-small"),
                             *t3 = tn_new(a, TN_F32, 1, &big, "c-big");
            for (int64_t i = 0; i < big; i++) ((float *)t1->data)[i] = (float)i, ((float *)t3->data)[i] = -(float)i;
            for (int64_t i = 0; i < small; i++) ((int32_t *)t2->data)[i] = (int32_t)(i * 10 + k);
            rec_add_tensor(&r, t1);
            rec_add_tensor(&r, t2);
            rec_add_tensor(&r, t3);
            rec_meta_set_i64(&r, "k", k);
            CHECK(rec_write(w, &r) == 0, "write record %d (codec %d)", k, codec);
        }
        CHECK(rec_writer_close(w) == 0, "close (codec %d)", codec);
        tn_arena_reset(a);

        struct rec_reader *in = rec_reader_open(path);
        int calls = 0;
        rec_reader_set_tensor_filter(in, keep_b, &calls);
        struct rec r;
        for (int k = 0; k < 2; k++) {
            int rc = rec_read(in, a, &r);
            struct tn_tensor *t = rec_tensor(&r, "b-small");
            int64_t kk = -1;
            rec_meta_i64(&r, "k", &kk, 1);
            CHECK(rc == 1 && r.n_tensors == 1 && t && t->shape[0] == small && ((int32_t *)t->data)[3] == 30 + k &&
                      kk == k && !rec_tensor(&r, "a-big"),
                  "record %d: only the kept tensor, intact (codec %d)", k, codec);
            /* the skipped payloads were not allocated: far less than one big tensor */
            CHECK(tn_arena_used(a) < (size_t)big * 4, "record %d: skipped payloads not stored (%zu bytes, codec %d)", k,
                  tn_arena_used(a), codec);
            tn_arena_reset(a);
        }
        CHECK(rec_read(in, a, &r) == 0 && calls == 6, "clean end, filter asked once per tensor (codec %d)", codec);
        rec_reader_close(in);
    }
    /* truncated inside a skipped tensor */
    {
        FILE *f = fopen(path, "r+b");
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fclose(f);
        CHECK(truncate(path, n / 4) == 0, "truncate");
        struct rec_reader *in = rec_reader_open(path);
        int calls = 0;
        rec_reader_set_tensor_filter(in, keep_b, &calls);
        struct rec r;
        int rc = rec_read(in, a, &r);
        CHECK(rc == -1 && strstr(ct_lasterr(), "truncated"), "truncated in a skipped tensor is an error: %s",
              ct_lasterr());
        rec_reader_close(in);
    }
    unlink(path);
    tn_arena_free(a);
    return check_failures != 0;
}
