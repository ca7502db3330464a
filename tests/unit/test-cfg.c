/* test-cfg.c - YAML trees: nesting, anchors, errors with positions. */
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
    tn_arena_free(a);
    return check_failures != 0;
}
