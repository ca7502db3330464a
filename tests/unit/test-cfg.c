/* test-cfg.c - YAML trees: nesting, anchors, errors with positions. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "check.h"
#include "ct.h"

int main(void) {
    struct tn_arena *a = tn_arena_new(0);
    const char *y = "organs:\n"
                    "  - {name: lung, ids: [10, 11, 12, 13, 14]}\n"
                    "  - name: heart\n"
                    "    ids: &h [51, 61]\n"
                    "again: *h\n"
                    "flag: yes\n"
                    "s: \"quoted: text\"\n";
    struct cfg_node *d = cfg_load_string(y, strlen(y), "t.yaml", a);
    CHECK(d && d->type == CFG_MAP && d->n == 4, "cfg: map root");
    const struct cfg_node *o = cfg_get(d, "organs");
    CHECK(o && o->type == CFG_SEQ && o->n == 2, "cfg: sequence");
    long v = 0;
    CHECK(o && cfg_long(cfg_get(o->items[0], "ids")->items[4], &v) == 0 && v == 14, "cfg: flow seq in flow map");
    CHECK(o && !strcmp(cfg_get(o->items[1], "name")->str, "heart"), "cfg: block map in seq");
    const struct cfg_node *ag = cfg_get(d, "again");
    CHECK(ag && ag->type == CFG_SEQ && ag->n == 2, "cfg: alias resolves to its anchor");
    int b = 0;
    CHECK(cfg_bool(cfg_get(d, "flag"), &b) == 0 && b == 1, "cfg: bool");
    const struct cfg_node *s = cfg_get(d, "s");
    CHECK(s && s->quoted && !strcmp(s->str, "quoted: text"), "cfg: quoted scalar");
    CHECK(cfg_long(s, &v) != 0 && strstr(ct_lasterr(), "t.yaml:7:4: expected an integer"), "cfg: error position");

    const char *bad = "a: [1, 2\nb: 3\n";
    CHECK(!cfg_load_string(bad, strlen(bad), "bad.yaml", a) && strstr(ct_lasterr(), "bad.yaml:"),
          "cfg: syntax error names the file");
    const char *dup = "a: 1\na: 2\n";
    CHECK(!cfg_load_string(dup, strlen(dup), "dup.yaml", a) && strstr(ct_lasterr(), "duplicate key 'a'"),
          "cfg: duplicate key");
    CHECK(!cfg_load_string("", 0, "e.yaml", a) && strstr(ct_lasterr(), "empty document"), "cfg: empty");
    const char *json = "{\"id\": \"x\\u00e9\", \"n\": [1.5, 2]}";
    d = cfg_load_string(json, strlen(json), "j.json", a);
    CHECK(d && !strcmp(cfg_get(d, "id")->str, "x\xc3\xa9"), "cfg: JSON with a unicode escape");
    const char *multi = "a: 1\n---\na: 2\n---\na: 3\n";
    struct cfg_node **docs;
    CHECK(cfg_load_all(multi, strlen(multi), "m.yaml", a, &docs) == 3 && cfg_long(cfg_get(docs[2], "a"), &v) == 0 &&
              v == 3, "cfg: multi-document stream");
    CHECK(!cfg_load_file("/nonexistent/x.yaml", a) && strstr(ct_lasterr(), "/nonexistent/x.yaml: No such file"),
          "cfg: missing file");

    /* issue 15 item 2: alias expansion is bounded (8 levels of 10 aliases = 10^8 nodes walked) */
    char bomb[2048];
    int k = snprintf(bomb, sizeof bomb, "a0: &a0 [x, y]\n");
    for (int l = 1; l <= 8; l++) {
        k += snprintf(bomb + k, sizeof bomb - (size_t)k, "a%d: &a%d [", l, l);
        for (int i = 0; i < 10; i++) k += snprintf(bomb + k, sizeof bomb - (size_t)k, "%s*a%d", i ? ", " : "", l - 1);
        k += snprintf(bomb + k, sizeof bomb - (size_t)k, "]\n");
    }
    double t0 = ct_now();
    CHECK(!cfg_load_string(bomb, (size_t)k, "bomb.yaml", a) && strstr(ct_lasterr(), "bomb.yaml:") &&
              strstr(ct_lasterr(), "aliases expand the document by more than 1000000 nodes"),
          "cfg: alias bomb refused");
    const char *fine = "a0: &a0 [x, y]\na1: &a1 [*a0, *a0, *a0]\na2: [*a1, *a1]\n";
    d = cfg_load_string(fine, strlen(fine), "fine.yaml", a);
    CHECK(d && cfg_get(d, "a2")->items[1]->items[2] == cfg_get(d, "a0"), "cfg: a few aliases are fine (shared nodes)");
    const char *cyc = "a: &x [1, *x]\n";
    CHECK(!cfg_load_string(cyc, strlen(cyc), "cyc.yaml", a) && strstr(ct_lasterr(), "alias *x refers to a node that contains it"),
          "cfg: a recursive alias is refused (no cycles in the tree)");
    /* the budget holds across the documents of one input */
    char *many = malloc(64 * 1024);
    k = 0;
    for (int dnum = 0; dnum < 40; dnum++) {
        k += snprintf(many + k, 64 * 1024 - (size_t)k, "---\na0: &a0 [x, y, z, w, v, u, t, s, r, q]\n");
        for (int l = 1; l <= 4; l++) {
            k += snprintf(many + k, 64 * 1024 - (size_t)k, "a%d: &a%d [", l, l);
            for (int i = 0; i < 10; i++) k += snprintf(many + k, 64 * 1024 - (size_t)k, "%s*a%d", i ? ", " : "", l - 1);
            k += snprintf(many + k, 64 * 1024 - (size_t)k, "]\n");
        }
    }
    CHECK(cfg_load_all(many, (size_t)k, "many.yaml", a, &docs) < 0 && strstr(ct_lasterr(), "aliases expand"),
          "cfg: the alias budget is per input, not per document");
    free(many);
    CHECK(ct_now() - t0 < 5, "cfg: the refusals are fast (under 5 s; the bomb is 10^8 nodes)");

    /* issue 15 item 4: the duplicate-key check is linear (100000 keys: 30 s before) */
    size_t cap = 100000 * 32, n = 0;
    char *keys = malloc(cap);
    for (int i = 0; i < 100000; i++) n += (size_t)snprintf(keys + n, cap - n, "key%06d: %d\n", i, i);
    t0 = ct_now();
    d = cfg_load_string(keys, n, "keys.yaml", a);
    double dt = ct_now() - t0;
    CHECK(d && d->n == 100000 && dt < 10, "cfg: 100000 keys load in under 10 s (linear duplicate check; quadratic took 30 s)");
    n += (size_t)snprintf(keys + n, cap - n, "key050000: dup\n");
    CHECK(!cfg_load_string(keys, n, "keys.yaml", a) && strstr(ct_lasterr(), "keys.yaml:100001:1: duplicate key 'key050000'"),
          "cfg: a duplicate among 100000 keys is found");
    free(keys);
    tn_arena_free(a);
    return check_failures != 0;
}
